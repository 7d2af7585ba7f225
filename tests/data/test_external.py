"""A practitioner's data: image folders (with a corrupt file), CSV files (with a missing path), .npz, HF-style rows."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from transferlab.data import load_sized
from transferlab.data._external import from_hf_dataset, load_csv, load_data, load_image_folder, load_npz


def _write_folder(root, classes=("ant", "bee", "cat"), per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (10 + i, 12)  # images keep their own sizes
            Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_image_folder_split_is_stratified_and_seeded(tmp_path):
    root = _write_folder(tmp_path / "data")
    data = load_image_folder(root, test_fraction=0.34, seed=3)
    assert data.class_names == ("ant", "bee", "cat")
    assert np.bincount(data.y_test).tolist() == [2, 2, 2] and np.bincount(data.y_train).tolist() == [4, 4, 4]
    assert all(img.dtype == np.uint8 and img.shape[2] == 3 for img in data.x_train)
    again = load_image_folder(root, test_fraction=0.34, seed=3)
    assert again.fingerprint == data.fingerprint and np.array_equal(again.y_train, data.y_train)
    assert load_image_folder(root, test_fraction=0.34, seed=4).fingerprint != data.fingerprint


def test_a_corrupt_file_is_named_or_skipped(tmp_path):
    root = _write_folder(tmp_path / "data")
    (root / "bee" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image_folder(root)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        data = load_image_folder(root, strict=False)
    assert len(data.skipped) == 1 and data.skipped[0].endswith("broken.jpg")
    assert len(data.x_train) + len(data.x_test) == 18


def test_train_and_test_folders_are_the_splits(tmp_path):
    _write_folder(tmp_path / "d" / "train", per_class=4)
    _write_folder(tmp_path / "d" / "test", per_class=2, seed=1)
    data = load_data(tmp_path / "d")
    assert len(data.x_train) == 12 and len(data.x_test) == 6


def test_csv_with_a_missing_path(tmp_path):
    root = _write_folder(tmp_path / "data", per_class=3)
    rows = ["path,label"] + [f"data/{c}/{i}.png,{c}" for c in ("ant", "bee", "cat") for i in range(3)]
    (tmp_path / "list.csv").write_text("\n".join([*rows, "data/cat/missing.png,cat"]) + "\n")
    with pytest.raises(ValueError, match="missing.png"):
        load_csv(tmp_path / "list.csv")
    with pytest.warns(UserWarning):
        data = load_csv(tmp_path / "list.csv", strict=False, test_fraction=0.3)
    assert len(data.x_train) + len(data.x_test) == 9 and root.exists()
    (tmp_path / "bad.csv").write_text("file,label\nx.png,a\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        load_csv(tmp_path / "bad.csv")


def _write_split_csv(tmp_path) -> None:
    """``list.csv``: three classes of three images in ``data/``, image 0 of each class in the test split."""
    _write_folder(tmp_path / "data", per_class=3)
    rows = ["path,label,split"] + [f"data/{c}/{i}.png,{c},{'test' if i == 0 else 'train'}"
                                   for c in ("ant", "bee", "cat") for i in range(3)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")


def test_csv_split_column(tmp_path):
    _write_split_csv(tmp_path)
    data = load_data(tmp_path / "list.csv")
    assert np.bincount(data.y_test).tolist() == [1, 1, 1] and len(data.x_train) == 6


def test_npz_images_features_and_bad_arrays(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "imgs.npz", images=rng.integers(0, 256, (20, 3, 8, 8), dtype=np.uint8),
             labels=np.repeat([3, 7], 10))
    data = load_npz(tmp_path / "imgs.npz")
    assert data.kind == "images" and data.class_names == ("3", "7") and data.x_train[0].shape == (8, 8, 3)
    np.savez(tmp_path / "feats.npz", features_train=rng.normal(size=(10, 4)), labels_train=np.arange(10) % 2,
             features_test=rng.normal(size=(6, 4)), labels_test=np.arange(6) % 2)
    feats = load_npz(tmp_path / "feats.npz")
    assert feats.kind == "features" and feats.x_train.shape == (10, 4) and len(feats.y_test) == 6
    np.savez(tmp_path / "nan.npz", features=np.full((4, 2), np.nan), labels=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="finite"):
        load_npz(tmp_path / "nan.npz")
    np.savez(tmp_path / "short.npz", images=np.zeros((4, 5, 5), np.uint8), labels=[0, 1])
    with pytest.raises(ValueError, match="rows"):
        load_npz(tmp_path / "short.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read"):
        load_npz(tmp_path / "junk.npz")


def test_hf_style_rows_and_k_shot():
    rng = np.random.default_rng(0)
    rows = [{"image": Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)), "label": i % 3}
            for i in range(30)]
    data = from_hf_dataset(rows, test_fraction=0.2, seed=1)
    assert data.n_classes == 3 and data.x_train[0].shape == (9, 9, 1)
    few = data.k_shot(2, seed=5)
    assert np.bincount(few.y_train).tolist() == [2, 2, 2] and few.fingerprint != data.fingerprint
    with pytest.raises(ValueError, match="shots=9"):
        data.k_shot(9)
    with pytest.raises(ValueError, match="has no 'image'"):
        from_hf_dataset([{"img": None, "label": 0}])


def test_unknown_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_data(tmp_path / "nothing.csv")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="must be an image folder"):
        load_data(tmp_path / "x.txt")


# -- issue 15: what a hostile or careless folder, CSV or archive holds ---------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` RGB pixels, with no pixel data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_images_in_subfolders_are_their_class_and_hidden_files_are_skipped(tmp_path):
    root = _write_folder(tmp_path / "data", classes=("ant", "bee"), per_class=3)
    nested = root / "ant" / "outdoor" / "sunny"
    nested.mkdir(parents=True)
    for i in range(2):  # 5 x 7: a size no top-level image has
        Image.fromarray(np.full((5, 7, 3), 40 * i, dtype=np.uint8)).save(nested / f"n{i}.png")
    (root / "ant" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")  # macOS
    (root / "bee" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "bee" / ".thumbs").mkdir()  # a hidden folder: its images are not the class's
    Image.fromarray(np.zeros((6, 6, 3), dtype=np.uint8)).save(root / "bee" / ".thumbs" / "t.png")
    data = load_image_folder(root, test_fraction=0.2, seed=0)  # strict: nothing hidden is read
    assert data.skipped == ()
    images = [*data.x_train, *data.x_test]
    labels = np.concatenate([data.y_train, data.y_test])
    assert np.bincount(labels).tolist() == [5, 3]  # ant: 3 + 2 nested; bee: 3 (the hidden one left out)
    nested_labels = [int(y) for img, y in zip(images, labels) if img.shape[:2] == (5, 7)]
    assert nested_labels == [0, 0]  # both nested images are ants
    assert all(img.shape[:2] != (6, 6) for img in images)


def test_a_decompression_bomb_is_refused_by_name_or_skipped(tmp_path):
    root = _write_folder(tmp_path / "data", classes=("ant", "bee"), per_class=3)
    (root / "bee" / "bomb.png").write_bytes(_png_header(50_000, 50_000))
    with pytest.raises(ValueError, match=r"bomb\.png'.*decompression bomb.*2500000000 pixels"):
        load_image_folder(root)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        data = load_image_folder(root, strict=False)
    assert len(data.skipped) == 1 and data.skipped[0].endswith("bomb.png")
    assert len(data.x_train) + len(data.x_test) == 6


def test_an_image_over_the_pixel_limit_but_under_twice_it_is_refused_too(tmp_path, monkeypatch):
    # Pillow only warns between one and two times MAX_IMAGE_PIXELS; the warning is refused as well.
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)
    root = _write_folder(tmp_path / "data", classes=("ant", "bee"), per_class=2)  # 10x12 and 11x12: > 100 px
    with pytest.raises(ValueError, match=r"decompression bomb \(Image size \(120 pixels\) exceeds limit of 100"):
        load_image_folder(root)


def test_a_csv_row_with_too_few_fields_names_the_file_and_line(tmp_path):
    _write_folder(tmp_path / "data", per_class=2)
    (tmp_path / "list.csv").write_text("path,label\ndata/ant/0.png,ant\n\ndata/bee/0.png\ndata/cat/0.png,cat\n")
    with pytest.raises(ValueError, match=r"list\.csv', line 4: 1 field\(s\) where the header has 2 \(path, label\)"):
        load_csv(tmp_path / "list.csv")
    (tmp_path / "long.csv").write_text("path,label\ndata/ant/0.png,ant,extra\n")
    with pytest.raises(ValueError, match=r"long\.csv', line 2: 3 field\(s\)"):
        load_csv(tmp_path / "long.csv")
    (tmp_path / "empty.csv").write_text("path,label\ndata/ant/0.png, \n")
    with pytest.raises(ValueError, match=r"empty\.csv', line 2: the 'label' field is empty"):
        load_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("path,label\n")
    with pytest.raises(ValueError, match="has no rows below its header"):
        load_csv(tmp_path / "header.csv")


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    _write_folder(tmp_path / "data", per_class=3)
    rows = ["path,label"] + [f"data/{c}/{i}.png,{c}" for c in ("ant", "bee", "cat") for i in range(3)]
    (tmp_path / "excel.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")
    assert (tmp_path / "excel.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    data = load_csv(tmp_path / "excel.csv", test_fraction=0.34)
    assert data.class_names == ("ant", "bee", "cat") and len(data.x_train) + len(data.x_test) == 9
    (tmp_path / "latin1.csv").write_bytes("path,label\ndata/ant/0.png,fourmi\xe8\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.csv' is not UTF-8 text .*save it as CSV UTF-8"):
        load_csv(tmp_path / "latin1.csv")


def test_npz_labels_as_a_column_are_accepted(tmp_path):
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(12, 3)), np.repeat([4, 9], 6)
    np.savez(tmp_path / "col.npz", features=features, labels=labels[:, None])
    np.savez(tmp_path / "flat.npz", features=features, labels=labels)
    col, flat = load_npz(tmp_path / "col.npz"), load_npz(tmp_path / "flat.npz")
    assert col.class_names == ("4", "9")
    np.testing.assert_array_equal(col.y_train, flat.y_train)
    np.testing.assert_array_equal(col.x_train, flat.x_train)
    np.savez(tmp_path / "two.npz", features=features, labels=np.stack([labels, labels], axis=1))
    with pytest.raises(ValueError, match=r"labels in .*two\.npz' must be \(N,\) or \(N, 1\); got shape \(12, 2\)"):
        load_npz(tmp_path / "two.npz")


def test_a_truncated_npz_names_the_file(tmp_path):
    np.savez(tmp_path / "whole.npz", features=np.ones((50, 4)), labels=np.arange(50) % 2)
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read NumPy archive '.*cut\.npz'.*truncated"):
        load_npz(tmp_path / "cut.npz")


def _npz_with_header(path, shape, body=b"\x00" * 16):
    """An .npz whose ``labels.npy`` header claims ``shape`` float64, followed by only ``body``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    features = io.BytesIO()
    np.save(features, np.zeros((2, 2)))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("features.npy", features.getvalue())
        archive.writestr("labels.npy", header.getvalue() + body)
    return path


def test_an_npz_header_claiming_a_trillion_rows_is_refused_before_allocating(tmp_path, monkeypatch):
    path = _npz_with_header(tmp_path / "huge.npz", (10**12,))

    def must_not_read(*args, **kwargs):
        raise AssertionError("an array was read before its header was checked")

    monkeypatch.setattr(np.lib.format, "read_array", must_not_read)
    with pytest.raises(ValueError, match=r"huge\.npz': the header of 'labels' claims shape \(1000000000000,\) "
                                         r"\(8,000,000,000,000 bytes\) but the file holds 16"):
        load_npz(path)


def test_npz_arrays_larger_than_memory_are_refused(tmp_path, monkeypatch):
    from transferlab.data import _task

    np.savez(tmp_path / "big.npz", features=np.ones((20, 4)), labels=np.arange(20) % 2)  # 640 + 160 bytes
    monkeypatch.setattr(_task, "_memory_limit", lambda: 700)
    with pytest.raises(ValueError, match=r"need 800 bytes, more than this machine's memory \(700 bytes\)"):
        load_npz(tmp_path / "big.npz")
    monkeypatch.setattr(_task, "_memory_limit", lambda: 800)
    assert load_npz(tmp_path / "big.npz").x_train.shape[1] == 4


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    np.savez(tmp_path / "obj.npz", features=np.ones((4, 2)), labels=np.array([0, 1, "a", None], dtype=object))
    with pytest.raises(ValueError, match="'labels' holds Python objects, which are never unpickled"):
        load_npz(tmp_path / "obj.npz")


@pytest.mark.parametrize("shots, message", [
    (5, r"shots=5 needs 5 train samples per class, but in task 'feats' '1' \(index 1\) has 4"),
    (10**30, r"shots=10{30} needs .* '0' \(index 0\) has 6, '1' \(index 1\) has 4"),
])
def test_shots_above_the_smallest_class_name_the_class(tmp_path, shots, message):
    from transferlab.rank import rank_models

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "feats.npz", features_train=rng.normal(size=(10, 3)), labels_train=[0] * 6 + [1] * 4,
             features_test=rng.normal(size=(4, 3)), labels_test=[0, 0, 1, 1])
    with pytest.raises(ValueError, match=message):
        rank_models([], tmp_path / "feats.npz", ["logme"], shots=shots, progress=False)
    ranking = rank_models([], tmp_path / "feats.npz", ["logme"], shots=4, progress=False)
    assert len(ranking.rows) == 1


@pytest.mark.parametrize("shots", [0, -3, 2.5, True])
def test_a_bad_shots_value_is_refused_before_the_data_are_read(tmp_path, shots):
    from transferlab.rank import rank_models

    with pytest.raises(ValueError, match="^shots must be an integer >= 1"):
        rank_models([], tmp_path / "no-such-data.npz", shots=shots, progress=False)


@pytest.mark.parametrize("spec, classes", [("shapes", 8), ("glyphs:greek", 24)])
@pytest.mark.parametrize("per_class", [10**12, 2**64])
def test_a_per_class_size_beyond_memory_is_refused_before_rendering(spec, classes, per_class):
    # 28 x 28 float64 pixels, their uint8 copy and an int64 label: 7064 bytes a sample while rendering.
    needed = classes * (per_class + 50) * 7064
    with pytest.raises(ValueError, match=rf"n_train_per_class={per_class} and n_test_per_class=50 \({classes} "
                                         rf"classes\) needs about {needed:,} bytes to render"):
        load_sized(spec, train_per_class=per_class)


def test_the_render_size_check_is_against_the_memory_limit(monkeypatch):
    from transferlab.data import _task

    monkeypatch.setattr(_task, "_memory_limit", lambda: 8 * 3 * 7064 - 1)  # 8 shapes x (2 + 1) samples, less 1
    with pytest.raises(ValueError, match="more than this machine's memory"):
        load_sized("shapes", train_per_class=2, test_per_class=1)
    monkeypatch.setattr(_task, "_memory_limit", lambda: 8 * 3 * 7064)
    assert load_sized("shapes", train_per_class=2, test_per_class=1).x_train.shape == (16, 1, 28, 28)


def _decoded(path):
    """An image as Pillow decodes it, independently of the loader: (H, W, 3) uint8 RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_folder_images_are_decoded_when_read_and_equal_the_files(tmp_path):
    import hashlib
    import json

    from transferlab.data._external import ImageFiles

    root = _write_folder(tmp_path / "data")
    data = load_image_folder(root, test_fraction=0.34, seed=3)
    assert isinstance(data.x_train, ImageFiles) and isinstance(data.x_test, ImageFiles)
    files = sorted((root / c / f"{i}.png" for c in ("ant", "bee", "cat") for i in range(6)), key=str)
    assert sorted(map(str, [*data.x_train.paths, *data.x_test.paths])) == [str(f) for f in files]
    for path, image in zip(data.x_train.paths, data.x_train):
        np.testing.assert_array_equal(image, _decoded(path))
    # The fingerprint is the digest of the pixels, as when the images were held in memory: the root, every
    # image's bytes and shape in folder order, then the labels (recomputed here from the files).
    h = hashlib.sha256(json.dumps(str(root)).encode())
    for path in files:
        image = _decoded(path)
        h.update(image.tobytes())
        h.update(str(image.shape).encode())
    labels = np.repeat(np.arange(3, dtype=np.int64), 6)
    h.update(f"{labels.dtype}{labels.shape}".encode())
    h.update(labels.tobytes())
    split = hashlib.sha256(json.dumps(h.hexdigest()[:32]).encode())
    split.update(json.dumps({"seed": 3, "test_fraction": 0.34}, sort_keys=True).encode())
    assert data.fingerprint == split.hexdigest()[:32]
    # Slices, index arrays and k-shot draws stay files; they read the same images.
    assert isinstance(data.x_train[2:5], ImageFiles) and len(data.x_train[2:5]) == 3
    np.testing.assert_array_equal(data.x_train[np.array([4])][0], data.x_train[4])
    few = data.k_shot(2, seed=1)
    assert isinstance(few.x_train, ImageFiles) and len(few.x_train) == 6
    assert all(p in data.x_train.paths for p in few.x_train.paths)


def test_a_file_changed_or_corrupted_after_loading_is_refused_by_name(tmp_path):
    root = _write_folder(tmp_path / "data", classes=("ant", "bee"), per_class=3)
    data = load_image_folder(root, test_fraction=0.34, seed=0)
    target = data.x_train.paths[1]
    target.write_bytes(b"\xff\xd8 not really a jpeg any more")
    with pytest.raises(ValueError, match=rf"cannot read image '.*{target.name}'"):
        data.x_train[1]
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8)).save(target)  # readable, but not the fingerprinted pixels
    with pytest.raises(ValueError, match=rf"image '.*{target.name}' changed since the data were loaded"):
        list(data.x_train)
    target.unlink()
    with pytest.raises(ValueError, match=rf"cannot read image '.*{target.name}'.*No such file"):
        data.x_train[1]


def test_csv_images_are_files_too_with_their_split(tmp_path):
    from transferlab.data._external import ImageFiles

    _write_split_csv(tmp_path)
    data = load_csv(tmp_path / "list.csv")
    assert isinstance(data.x_train, ImageFiles) and [p.name for p in data.x_test.paths] == ["0.png"] * 3
    for path, image in zip(data.x_test.paths, data.x_test):
        np.testing.assert_array_equal(image, _decoded(path))
