"""A practitioner's data: image folders (with a corrupt file), CSV files (with a missing path), .npz, HF-style rows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

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


def test_csv_split_column(tmp_path):
    _write_folder(tmp_path / "data", per_class=3)
    rows = ["path,label,split"] + [f"data/{c}/{i}.png,{c},{'test' if i == 0 else 'train'}"
                                   for c in ("ant", "bee", "cat") for i in range(3)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
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
