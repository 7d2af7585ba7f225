"""Regression and multi-label targets read by ``load_data`` (CSV and ``.npz``), only when asked for."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transferlab.data import ImageData, load_csv, load_data, load_npz


def _write_csv(root, labels, *, header="path,label", split=None):
    """A CSV of tiny PNGs with the given label fields (and a split column when given)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = [header + (",split" if split else "")]
    for i, label in enumerate(labels):
        Image.fromarray(rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)).save(root / f"{i}.png")
        field = f'"{label}"' if "," in label else label
        lines.append(f"{i}.png,{field}" + (f",{split[i]}" if split else ""))
    (root / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "data.csv"


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


# --------------------------------------------------------------------------- CSV


def test_csv_regression_column_is_read_as_floats_with_a_plain_seeded_split(tmp_path):
    values = ["1.5", "-2", "3e-1", " 4.25 ", "0", "7", "8.5", "-0.5", "10", "11"]
    path = _write_csv(tmp_path, values)
    data = load_data(path, target_kind="regression", test_fraction=0.2, seed=3)
    assert isinstance(data, ImageData) and data.target_kind == "regression" and data.class_names == ()
    assert data.y_train.dtype == np.float64 and data.y_train.shape == (8,) and data.y_test.shape == (2,)
    expected = sorted(float(v) for v in values)
    np.testing.assert_array_equal(np.sort(np.concatenate([data.y_train, data.y_test])), expected)
    again = load_data(path, target_kind="regression", test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    assert again.fingerprint == data.fingerprint
    # the same file read as classes is another dataset (ten classes of one sample cannot be split)
    with pytest.raises(ValueError, match="a train/test split needs 2 per class"):
        load_data(path)


def test_csv_regression_with_a_split_column(tmp_path):
    path = _write_csv(tmp_path, ["1", "2", "3", "4"], split=["train", "train", "test", "train"])
    data = load_csv(path, target_kind="regression")
    np.testing.assert_array_equal(data.y_train, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(data.y_test, [3.0])
    assert len(data.x_train) == 3 and data.target_kind == "regression"


@pytest.mark.parametrize("bad", ["abc", "nan", "inf", "1,5"])
def test_csv_regression_value_that_is_not_a_finite_number_is_refused_with_its_line(tmp_path, bad):
    path = _write_csv(tmp_path, ["1.0", "2.0", bad, "3.0"])
    with pytest.raises(ValueError, match=r"line 4: the 'label' field .* is not a finite number") as exc:
        load_data(path, target_kind="regression")
    _one_line(exc)


def test_csv_multilabel_lists_become_a_zero_one_matrix(tmp_path):
    labels = ["cat;dog", "dog", "", "cat ; bird", "bird;cat;dog", "dog"]
    path = _write_csv(tmp_path, labels, split=["train", "train", "train", "test", "train", "test"])
    data = load_csv(path, target_kind="multilabel")
    assert data.target_kind == "multilabel" and data.class_names == ("bird", "cat", "dog")
    np.testing.assert_array_equal(data.y_train, [[0, 1, 1], [0, 0, 1], [0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(data.y_test, [[1, 1, 0], [0, 0, 1]])
    assert data.y_train.dtype == np.int64
    split = load_data(path.with_name("data.csv"), target_kind="multilabel")  # the split column decides here too
    np.testing.assert_array_equal(split.y_test, data.y_test)


def test_csv_multilabel_without_any_label_is_refused(tmp_path):
    path = _write_csv(tmp_path, ["", ";", " "])
    with pytest.raises(ValueError, match="names no label in any row") as exc:
        load_csv(path, target_kind="multilabel")
    _one_line(exc)


def test_an_unknown_target_kind_is_refused_by_name(tmp_path):
    path = _write_csv(tmp_path, ["1", "2"])
    with pytest.raises(ValueError, match="target_kind must be one of 'classes', 'regression', 'multilabel'"):
        load_data(path, target_kind="ordinal")


def test_an_image_folder_is_classes_only(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    with pytest.raises(ValueError, match="an image folder's labels are its class folders") as exc:
        load_data(tmp_path, target_kind="regression")
    _one_line(exc)


# --------------------------------------------------------------------------- .npz


def test_npz_float_targets_are_regression_targets(tmp_path):
    rng = np.random.default_rng(0)
    features, targets = rng.normal(size=(20, 3)), rng.normal(size=20)
    np.savez(tmp_path / "r.npz", features=features, targets=targets)
    data = load_npz(tmp_path / "r.npz", target_kind="regression", test_fraction=0.25)
    assert data.kind == "features" and data.target_kind == "regression" and data.class_names == ()
    assert data.y_train.shape == (15,) and data.y_test.shape == (5,) and data.y_train.dtype == np.float64
    # each row keeps its target
    both = np.concatenate([data.x_train, data.x_test])
    order = [int(np.flatnonzero((features == row).all(axis=1))[0]) for row in both]
    np.testing.assert_array_equal(np.concatenate([data.y_train, data.y_test]), targets[order])
    # integer "labels" read as regression are numbers too, and (N, K) targets are kept
    np.savez(tmp_path / "k.npz", features=features, labels=np.arange(20), targets_unused=np.zeros(3))
    assert load_data(tmp_path / "k.npz", target_kind="regression").y_train.dtype == np.float64
    np.savez(tmp_path / "m.npz", features_train=features[:15], targets_train=np.ones((15, 2)),
             features_test=features[15:], targets_test=np.zeros((5, 2)))
    split = load_npz(tmp_path / "m.npz", target_kind="regression")
    assert split.y_train.shape == (15, 2) and split.y_test.shape == (5, 2)


def test_npz_targets_are_not_read_as_classes_silently(tmp_path):
    np.savez(tmp_path / "r.npz", features=np.zeros((4, 2)), targets=np.arange(4.0))
    with pytest.raises(ValueError, match="holds 'targets', not 'labels': pass target_kind='regression'") as exc:
        load_data(tmp_path / "r.npz")
    _one_line(exc)


@pytest.mark.parametrize("bad, match", [
    (np.array([1.0, np.nan, 2.0, 3.0]), "holds NaN or Inf at row 1"),
    (np.array(["a", "b", "c", "d"]), "must be numbers"),
    (np.zeros((4, 2, 2)), "must be numbers, \\(N,\\) or \\(N, K\\)"),
])
def test_npz_malformed_regression_targets_are_refused(tmp_path, bad, match):
    np.savez(tmp_path / "r.npz", features=np.zeros((4, 2)), targets=bad)
    with pytest.raises(ValueError, match=match) as exc:
        load_npz(tmp_path / "r.npz", target_kind="regression")
    _one_line(exc)


def test_npz_multilabel_matrix(tmp_path):
    rng = np.random.default_rng(1)
    Y = (rng.random((12, 3)) < 0.5).astype(np.uint8)
    np.savez(tmp_path / "m.npz", features=rng.normal(size=(12, 4)), labels=Y)
    data = load_data(tmp_path / "m.npz", target_kind="multilabel", test_fraction=0.25, seed=2)
    assert data.target_kind == "multilabel" and data.class_names == ("0", "1", "2") and data.n_classes == 3
    assert data.y_train.shape == (9, 3) and data.y_test.shape == (3, 3) and data.y_train.dtype == np.int64
    assert np.sort(np.concatenate([data.y_train, data.y_test]).sum(axis=0)).tolist() == np.sort(Y.sum(axis=0)).tolist()
    with pytest.raises(ValueError, match="shots \\(k samples per class\\) need class labels"):
        data.k_shot(2)


@pytest.mark.parametrize("bad, match", [
    (np.array([[0, 1], [1, 2], [0, 0]]), "must hold only 0 and 1; got 2 at row 1, column 1"),
    (np.array([0, 1, 1]), "must be a 0/1 matrix"),
    (np.array([[0.5, 1.0], [1, 0], [0, 0]]), "must hold only 0 and 1"),
])
def test_npz_malformed_multilabel_matrix_is_refused(tmp_path, bad, match):
    np.savez(tmp_path / "m.npz", features=np.zeros((3, 2)), labels=bad)
    with pytest.raises(ValueError, match=match) as exc:
        load_npz(tmp_path / "m.npz", target_kind="multilabel")
    _one_line(exc)


def test_a_zero_one_matrix_read_as_classes_suggests_multilabel(tmp_path):
    np.savez(tmp_path / "m.npz", features=np.zeros((3, 2)), labels=np.eye(3, 2))
    with pytest.raises(ValueError, match="pass target_kind='multilabel'"):
        load_npz(tmp_path / "m.npz")


def test_class_data_keep_their_kind_and_fingerprint(tmp_path):
    np.savez(tmp_path / "c.npz", features=np.arange(16.0).reshape(8, 2), labels=np.arange(8) % 2)
    default, explicit = load_npz(tmp_path / "c.npz"), load_npz(tmp_path / "c.npz", target_kind="classes")
    assert default.target_kind == explicit.target_kind == "classes"
    assert default.fingerprint == explicit.fingerprint and default.y_train.dtype == np.int64
