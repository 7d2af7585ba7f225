"""A practitioner's own data: image folders, CSV files of paths, NumPy archives, Hugging Face datasets.

Images keep their own size here (``(H, W, C)`` uint8 arrays, ``C`` 1 or 3);
each model resizes and normalises them its own way when its features are
extracted (:mod:`transferlab.models._hub`). A dataset of precomputed features
(an ``.npz`` with ``features``) skips the models altogether.

Images read from files (an image folder, a CSV of paths) are not held decoded:
each split is an :class:`ImageFiles`, the paths of the readable images, decoded
again whenever an image is indexed, so memory does not grow with the number of
images. Loading still decodes every file once (in a few threads, one image at a
time), to refuse or skip the unreadable ones and to compute the fingerprint from
the pixels; a file that changes after that (size or modification time) is
refused when it is read again, so cached features always match the fingerprint.

Nothing read here is trusted: an image whose header claims more pixels than
Pillow's decompression-bomb limit is refused, an ``.npz`` member whose header
claims more bytes than the archive holds (or than the machine's memory) is
refused before anything is allocated, and a CSV row with a missing field is
refused with its line number. ``.npz`` files are never unpickled.

Targets are class labels by default. Regression targets (a real-valued label
column, or float ``targets``/``labels`` in an ``.npz``) and multi-label targets
(a CSV column of ``;``-separated label lists such as ``cat;dog``, or a 0/1
matrix in an ``.npz``) are read only when asked for with ``target_kind``: the
kind is never guessed from the values.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import numbers
import operator
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from transferlab._prefetch import prefetched
from transferlab._validation import check_multilabel, check_scalar, check_seed, check_target_kind
from transferlab.data import _task
from transferlab.data._ops import _k_shot_indices

#: File name endings read as images from a folder (anything Pillow opens is accepted from a CSV).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass(frozen=True)
class ImageData:
    """Labelled images (or precomputed features) with a train and a test split.

    Attributes
    ----------
    name : str
    x_train, x_test : ImageFiles or list of ndarray of shape (H, W, C) uint8, or ndarray of shape (N, D)
        The images (:class:`ImageFiles` when read from files: decoded when
        indexed), or the precomputed features.
    y_train, y_test : ndarray
        ``target_kind="classes"``: int64 (N,), class indices into
        ``class_names``; ``"regression"``: float64 (N,) or (N, K), the
        real-valued targets; ``"multilabel"``: int64 0/1 (N, L), column ``l``
        marking label ``class_names[l]``.
    class_names : tuple of str
        The classes, or the labels of a multi-label target; empty for regression.
    kind : {"images", "features"}
    fingerprint : str
        Digest of the contents and the split: names the cached features.
    skipped : tuple of str
        Files that could not be read and were left out.
    target_kind : {"classes", "regression", "multilabel"}, default "classes"
        What ``y_train`` and ``y_test`` hold.
    """

    name: str
    x_train: ImageFiles | list | np.ndarray
    y_train: np.ndarray
    x_test: ImageFiles | list | np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    kind: str = "images"
    fingerprint: str = ""
    skipped: tuple[str, ...] = field(default=())
    target_kind: str = "classes"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def split(self, which: str):
        """``(x, y)`` of ``"train"`` or ``"test"``."""
        if which not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test'; got {which!r}")
        return (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)

    def k_shot(self, k: int, *, seed: int = 0) -> ImageData:
        """``k`` training samples per class; the test split stays whole.

        The draw is the one of :func:`~transferlab.data.k_shot` (both call the
        same private function): the same labels and ``seed`` keep the same
        samples. ``k`` is called ``shots`` in error messages (the option of
        ``transferlab rank``). Only class labels have classes to draw from.
        """
        if self.target_kind != "classes":
            raise ValueError(f"shots (k samples per class) need class labels; {self.name!r} has {self.target_kind} "
                             "targets (give no shots)")
        k, _, keep = _k_shot_indices(self, k, seed, "shots")
        return replace(self, name=f"{self.name}/{k}-shot", x_train=_take(self.x_train, keep),
                       y_train=self.y_train[keep],
                       fingerprint=_digest(self.fingerprint, {"k_shot": k, "seed": seed}))


def _digest(*parts) -> str:
    return _fingerprint(_hasher(*parts))


def _fingerprint(h) -> str:
    """The fingerprint a finished :func:`_hasher` gives: the first 32 hex digits of its SHA-256."""
    return h.hexdigest()[:32]


def _hasher(*parts):
    """A SHA-256 that has taken ``parts`` as :func:`_digest` takes them, to be fed more of them."""
    h = hashlib.sha256()
    for part in parts:
        _hash_part(h, part)
    return h


def _hash_part(h, part) -> None:
    """Feed one part of a :func:`_digest` to ``h`` (a list of images is fed image by image, as :func:`_hash_image`)."""
    if isinstance(part, np.ndarray):
        h.update(f"{part.dtype}{part.shape}".encode())
        h.update(np.ascontiguousarray(part).tobytes())
    elif isinstance(part, list) and part and isinstance(part[0], np.ndarray):
        for item in part:
            _hash_image(h, item)
    else:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())


def _hash_image(h, image: np.ndarray) -> None:
    h.update(np.ascontiguousarray(image).tobytes())
    h.update(str(image.shape).encode())


def _take(x, idx):
    """The samples ``idx`` of ``x`` (an array, an :class:`ImageFiles` or a list), of the same type."""
    if isinstance(x, (np.ndarray, ImageFiles)):
        return x[idx]
    return [x[i] for i in idx]


def _stamp(path) -> tuple[int, int]:
    """``(size in bytes, modification time in ns)`` of a file: what tells that it changed."""
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


class ImageFiles(Sequence):
    """Images kept as their files: ``files[i]`` decodes file ``i`` into ``(H, W, C)`` uint8, ``C`` 1 or 3.

    What :func:`load_image_folder` and :func:`load_csv` give as ``x_train`` and
    ``x_test``: only the paths (and each file's size and modification time) are
    held, so a split of any number of images takes a few hundred bytes per image,
    and each image is decoded when indexed (as :func:`_read_image` decodes it).
    A slice, or an integer array of indices, is another ``ImageFiles``.

    Every file was decoded once when the data were loaded (that is where an
    unreadable file is refused or skipped, and what the fingerprint is computed
    from). A file whose size or modification time has changed since is refused
    when indexed (ValueError naming it): its pixels might no longer be those of
    the fingerprint, which names the cached features.

    Parameters
    ----------
    paths : sequence of path
    stamps : sequence of (int, int)
        ``(st_size, st_mtime_ns)`` of each file when it was read.

    Examples
    --------
    >>> files = load_image_folder(root).x_train        # doctest: +SKIP
    >>> len(files), files[0].shape, len(files[:8])     # doctest: +SKIP
    (12, (10, 12, 3), 8)
    """

    __slots__ = ("_paths", "_stamps")

    def __init__(self, paths, stamps):
        paths, stamps = tuple(Path(p) for p in paths), tuple((int(a), int(b)) for a, b in stamps)
        if len(paths) != len(stamps):
            raise ValueError(f"paths and stamps must have one entry per image; got {len(paths)} and {len(stamps)}")
        self._paths, self._stamps = paths, stamps

    @property
    def paths(self) -> tuple[Path, ...]:
        """The files, in order."""
        return self._paths

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ImageFiles(self._paths[index], self._stamps[index])
        if isinstance(index, (np.ndarray, list)):
            idx = np.asarray(index)
            if idx.dtype == bool:
                if idx.shape != (len(self),):
                    raise IndexError(f"a boolean index must have {len(self)} entries; got shape {idx.shape}")
                idx = np.flatnonzero(idx)
            elif idx.size and idx.dtype.kind not in "iu":
                raise IndexError(f"images are indexed by integers; got dtype {idx.dtype}")
            picked = [int(i) for i in idx.reshape(-1)]
            return ImageFiles([self._paths[i] for i in picked], [self._stamps[i] for i in picked])
        i = operator.index(index)
        return self.read(i)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read(i)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ImageFiles):
            return NotImplemented
        return self._paths == other._paths and self._stamps == other._stamps

    __hash__ = None  # equal as lists are: by content, and not hashable

    def __repr__(self) -> str:
        first = f", first {str(self._paths[0])!r}" if self._paths else ""
        return f"ImageFiles({len(self)} images{first})"

    def read(self, i: int) -> np.ndarray:
        """Image ``i``, decoded; ValueError naming the file when it changed since loading or cannot be read."""
        path, stamp = self._paths[i], self._stamps[i]
        image, now = _decode(path)
        if now != stamp:
            raise ValueError(f"image {str(path)!r} changed since the data were loaded (its size or modification "
                             "time differs); load the data again")
        return image


def _read_image(path: Path) -> np.ndarray:
    """``(H, W, C)`` uint8 with ``C`` 1 (grey) or 3 (RGB); ValueError when Pillow cannot read it.

    An image whose header claims more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``
    (Pillow's decompression-bomb limit, about 89 million) is refused before its
    pixels are decoded.
    """
    return _decode(path)[0]


def _decode(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """The image at ``path`` as :func:`_read_image` gives it, and the file's :func:`_stamp` just before.

    Safe to call from several threads at once: the decompression-bomb limit is
    checked here, from the header's size, rather than by turning Pillow's warning
    into an error (the warning filters are the whole process's).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        stamp = _stamp(path)
        with Image.open(path) as image:
            _refuse_bomb(image.size)
            image.load()
            mode = "L" if image.mode in ("1", "L", "I;16", "I", "F") else "RGB"
            array = np.asarray(image.convert(mode), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"cannot read image {str(path)!r}: refused as a possible decompression bomb "
                         f"({str(exc).rstrip('.')})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read image {str(path)!r}: {exc}") from None
    return (array[:, :, None] if array.ndim == 2 else array), stamp


def _refuse_bomb(size: tuple[int, int]) -> None:
    """Raise Pillow's ``DecompressionBombWarning`` (as an exception) for more pixels than its limit.

    Pillow itself raises beyond twice ``MAX_IMAGE_PIXELS`` and only warns between
    one and two times it; both are refused here, with Pillow's own wording.
    """
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    pixels = max(1, size[0]) * max(1, size[1])
    if limit is not None and pixels > limit:
        raise Image.DecompressionBombWarning(f"Image size ({pixels} pixels) exceeds limit of {limit} pixels, "
                                             "could be decompression bomb DOS attack.")


def _decode_workers() -> int:
    """Threads that decode images: one per core, at most 8 (Pillow releases the GIL while it decodes)."""
    return max(1, min(8, os.cpu_count() or 1))


def _decoded_in_order(paths: list[Path]) -> Iterator[tuple[np.ndarray, tuple[int, int]] | ValueError]:
    """``_decode(path)`` of each path, in order (or the ValueError it raised), decoded by a few threads.

    At most a few images per thread are decoded ahead of the one consumed, so memory
    stays that of a handful of images whatever the number of paths.
    """
    def attempt(path):
        try:
            return _decode(path)
        except ValueError as exc:
            return exc

    workers = _decode_workers()
    if workers == 1 or len(paths) < 2:
        yield from map(attempt, paths)
        return
    yield from prefetched(paths, lambda pool, path: pool.submit(attempt, path), Future.result, workers=workers,
                          ahead=4 * workers, name="transferlab-decode")


def _read_all(paths: list[Path], labels: list[int], strict: bool,
              digest=None) -> tuple[ImageFiles, list, tuple[str, ...]]:
    """The readable files as :class:`ImageFiles`, their labels and the skipped files.

    Every file is decoded (in threads, in order, none kept): an unreadable one is
    refused (``strict``) or skipped. ``digest`` (a SHA-256) is fed the kept images
    as :func:`_digest` feeds a list of them, so fingerprints are those of the
    decoded pixels, as when the images were held in memory.
    """
    from PIL import Image

    kept_paths, stamps, kept, skipped = [], [], [], []
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        # Pillow warns (rather than raises) between one and two times its pixel limit; _decode refuses those
        # images anyway, and this keeps the warning from being printed beside the error while they are read.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        decoded = stack.enter_context(contextlib.closing(_decoded_in_order(list(paths))))  # threads end here
        for path, label, result in zip(paths, labels, decoded):
            if isinstance(result, ValueError):
                if strict:
                    raise ValueError(f"{result} (pass strict=False, or --skip-bad on the command line, to leave it "
                                     "out)") from None
                skipped.append(str(path))
                continue
            image, stamp = result
            if digest is not None:
                _hash_image(digest, image)
            kept_paths.append(path)
            stamps.append(stamp)
            kept.append(label)
    if digest is not None and not kept:
        _hash_part(digest, [])  # as _digest hashes an empty list
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): {', '.join(skipped[:5])}"
                      + (" ..." if len(skipped) > 5 else ""), stacklevel=3)
    return ImageFiles(kept_paths, stamps), kept, tuple(skipped)


def _class_indices(names: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    classes = tuple(sorted(set(names)))
    lookup = {c: i for i, c in enumerate(classes)}
    return classes, np.array([lookup[n] for n in names], dtype=np.int64)


def _split(name, x, y, classes, *, test_fraction, seed, fingerprint, skipped=(), kind="images",
           target_kind="classes") -> ImageData:
    """Seeded stratified train/test split: ``round(test_fraction * n_c)`` test samples per class (at least 1).

    Regression and multi-label targets have no classes to stratify by: a plain seeded
    split keeps ``round(test_fraction * N)`` samples (at least 1, at most ``N - 1``) for test.
    """
    test_fraction = check_scalar(test_fraction, "test_fraction", numbers.Real, min_val=0, max_val=1,
                                 include_boundaries="neither")
    rng = np.random.default_rng(check_seed(seed))
    test = []
    if target_kind != "classes":
        n = y.shape[0]
        if n < 2:
            raise ValueError(f"{name!r} has {n} sample(s); a train/test split needs at least 2")
        test = rng.choice(n, size=min(n - 1, max(1, round(test_fraction * n))), replace=False).tolist()
        fingerprint = _digest(fingerprint, {"target_kind": target_kind})
    for c in range(len(classes) if target_kind == "classes" else 0):
        members = np.flatnonzero(y == c)
        if members.size < 2:
            raise ValueError(f"class {classes[c]!r} has {members.size} sample(s); a train/test split needs 2 per class")
        n_test = min(members.size - 1, max(1, round(test_fraction * members.size)))
        test.extend(rng.choice(members, size=n_test, replace=False).tolist())
    is_test = np.zeros(y.shape[0], dtype=bool)
    is_test[test] = True
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    return ImageData(name, _take(x, train_idx), y[train_idx], _take(x, test_idx), y[test_idx], classes, kind,
                     _digest(fingerprint, {"test_fraction": test_fraction, "seed": seed}), tuple(skipped),
                     target_kind)


def load_image_folder(path, *, test_fraction: float = 0.2, seed: int = 0, strict: bool = True) -> ImageData:
    """Images in one subfolder per class (``root/<class>/<image>``), split into train and test.

    If ``root`` holds ``train/`` and ``test/`` folders of that shape, they are the
    splits; otherwise a seeded stratified split keeps ``test_fraction`` of each class.

    A class's images are every file with an image suffix (:data:`IMAGE_SUFFIXES`)
    anywhere below its folder: ``root/cat/indoor/1.png`` is a ``cat``. Hidden
    files and folders (a name starting with ``.``, such as the ``._*`` files macOS
    leaves on shared drives) are skipped, as are files of other suffixes; linked
    folders are followed once.

    Parameters
    ----------
    path : path
        The root folder.
    test_fraction : float, default 0.2
    seed : int, default 0
    strict : bool, default True
        Refuse a file that is not a readable image (the message names it); with
        ``False`` such files are left out, listed in ``skipped`` and in a warning.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist or is not a folder")
    if (root / "train").is_dir() and (root / "test").is_dir():
        parts = {s: _folder_files(root / s) for s in ("train", "test")}
        classes = tuple(sorted({c for files in parts.values() for _, c in files}))
        lookup = {c: i for i, c in enumerate(classes)}
        loaded = {}
        skipped: list[str] = []
        digest = _hasher(str(root))  # the digest of (root, train images, train labels, test images, test labels)
        for s, files in parts.items():
            images, labels, bad = _read_all([p for p, _ in files], [lookup[c] for _, c in files], strict, digest)
            loaded[s] = (images, np.array(labels, dtype=np.int64))
            _hash_part(digest, loaded[s][1])
            skipped.extend(bad)
        return ImageData(root.name, *loaded["train"], *loaded["test"], classes, "images", _fingerprint(digest),
                         tuple(skipped))
    files = _folder_files(root)
    classes, labels = _class_indices([c for _, c in files])
    digest = _hasher(str(root))  # the digest of (root, images, labels)
    images, kept, skipped = _read_all([p for p, _ in files], labels.tolist(), strict, digest)
    y = np.array(kept, dtype=np.int64)
    _hash_part(digest, y)
    return _split(root.name, images, y, classes, test_fraction=test_fraction, seed=seed,
                  fingerprint=_fingerprint(digest), skipped=skipped)


def _folder_files(root: Path) -> list[tuple[Path, str]]:
    """``(file, class name)`` of every image below each class folder of ``root``, in a fixed order."""
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"{str(root)!r} must hold one subfolder per class (at least 2); found {len(classes)}")
    files = [(f, c.name) for c in classes for f in _class_files(c)]
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the class folders of {str(root)!r}")
    return files


def _class_files(folder: Path) -> list[Path]:
    """Image files at any depth below ``folder``, sorted by their path in it; hidden files and folders skipped.

    Linked folders are followed, each real folder once (a link back up cannot loop).
    """
    found, seen = [], set()
    for current, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = [d for d in folders if not d.startswith(".")]
        found.extend(Path(current) / n for n in names
                     if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found, key=lambda f: f.relative_to(folder).parts)


def load_csv(path, *, test_fraction: float = 0.2, seed: int = 0, strict: bool = True,
             path_column: str = "path", label_column: str = "label", target_kind: str = "classes") -> ImageData:
    """Images listed in a CSV file with a path and a label column (an optional ``split`` column: train/test).

    Relative paths are read from the CSV file's folder. A listed file that is
    missing or unreadable is refused by name (``strict=True``) or left out. The
    file is read as UTF-8, with or without the byte-order mark that spreadsheet
    programs write; a row with more or fewer fields than the header, or an empty
    path or label, is refused with its line number.

    ``target_kind`` says what the label column holds, never guessed from it:
    ``"classes"`` (a class name per row), ``"regression"`` (a real number per
    row; a field that is not a finite number is refused with its line number) or
    ``"multilabel"`` (a ``;``-separated list of label names per row, such as
    ``cat;dog``; an empty field is a sample with no label). Without a ``split``
    column, regression and multi-label data get a plain seeded split (no classes
    to stratify by).
    """
    target_kind = check_target_kind(target_kind)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"CSV file {str(path)!r} does not exist")
    lines: list[int] = []
    rows = _read_csv_rows(path, (path_column, label_column), lines=lines,
                          may_be_empty=(label_column,) if target_kind == "multilabel" else ())
    files = [(path.parent / r[path_column]).resolve() if not Path(r[path_column]).is_absolute()
             else Path(r[path_column]) for r in rows]
    classes, labels = _csv_targets(path, [r[label_column] for r in rows], lines, label_column, target_kind)
    digest = _hasher(str(path))  # the digest of (path, images, labels[, splits, target kind])
    images, kept, skipped = _read_all(files, list(range(len(files))), strict, digest)
    kept = np.array(kept, dtype=np.int64)
    y = labels[kept]
    _hash_part(digest, y)
    extra = [] if target_kind == "classes" else [{"target_kind": target_kind}]  # class data keep their digests
    if "split" in rows[0]:
        splits = np.array([rows[i]["split"].strip().lower() for i in kept])
        if not set(splits) <= {"train", "test"} or "test" not in splits or "train" not in splits:
            raise ValueError("the CSV's split column must hold 'train' and 'test' (both)")
        for part in (splits.tolist(), *extra):
            _hash_part(digest, part)
        pick = lambda s: _take(images, np.flatnonzero(splits == s))  # noqa: E731
        return ImageData(path.stem, pick("train"), y[splits == "train"], pick("test"), y[splits == "test"], classes,
                         "images", _fingerprint(digest), skipped, target_kind)
    return _split(path.stem, images, y, classes, test_fraction=test_fraction, seed=seed,
                  fingerprint=_fingerprint(digest), skipped=skipped, target_kind=target_kind)


def _csv_targets(path: Path, fields: list[str], lines: list[int], column: str,
                 target_kind: str) -> tuple[tuple[str, ...], np.ndarray]:
    """``(class_names, y)`` of a CSV's label fields read as ``target_kind`` (see :func:`load_csv`)."""
    if target_kind == "classes":
        return _class_indices(fields)
    if target_kind == "regression":
        values = np.empty(len(fields))
        for i, (text, line) in enumerate(zip(fields, lines)):
            try:
                values[i] = float(text.strip())
            except ValueError:
                values[i] = np.nan
            if not math.isfinite(values[i]):
                raise ValueError(f"CSV file {str(path)!r}, line {line}: the {column!r} field {text!r} is not a "
                                 "finite number (regression targets are real values)")
        return (), values
    members = [[t.strip() for t in text.split(";") if t.strip()] for text in fields]
    names = tuple(sorted({t for labels in members for t in labels}))
    if not names:
        raise ValueError(f"CSV file {str(path)!r}: the {column!r} column names no label in any row; a multi-label "
                         "target lists each sample's labels separated by ';' (e.g. cat;dog)")
    lookup = {t: j for j, t in enumerate(names)}
    y = np.zeros((len(fields), len(names)), dtype=np.int64)
    for i, labels in enumerate(members):
        y[i, [lookup[t] for t in labels]] = 1
    return names, y


def _read_csv_rows(path: Path, required: tuple[str, ...], *, lines: list[int] | None = None,
                   may_be_empty: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts keyed by its header; ValueError naming the line of a malformed row.

    Each row's line number is appended to ``lines`` when given; a ``required``
    column in ``may_be_empty`` must be there but may have empty fields.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: drop a byte-order mark
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"CSV file {str(path)!r} is empty; it needs a header row "
                                 f"({', '.join(required)}) and one row per image")
            for column in required:
                if column not in header:
                    raise ValueError(f"CSV file {str(path)!r} has no {column!r} column; its columns are {header}")
            rows = []
            for fields in reader:
                if not fields:  # a blank line
                    continue
                line = reader.line_num
                if len(fields) != len(header):
                    raise ValueError(f"CSV file {str(path)!r}, line {line}: {len(fields)} field(s) where the header "
                                     f"has {len(header)} ({', '.join(header)}); fix or remove that row")
                row = dict(zip(header, fields))
                for column in required:
                    if not row[column].strip() and column not in may_be_empty:
                        raise ValueError(f"CSV file {str(path)!r}, line {line}: the {column!r} field is empty")
                rows.append(row)
                if lines is not None:
                    lines.append(line)
    except UnicodeDecodeError as exc:
        raise ValueError(f"CSV file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                         "save it as CSV UTF-8") from None
    except csv.Error as exc:
        raise ValueError(f"CSV file {str(path)!r}, line {reader.line_num}: {exc}") from None
    if not rows:
        raise ValueError(f"CSV file {str(path)!r} has no rows below its header")
    return rows


def load_npz(path, *, test_fraction: float = 0.2, seed: int = 0, target_kind: str = "classes") -> ImageData:
    """A NumPy archive of ``images`` (``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``, uint8) or
    ``features`` (``(N, D)``) with ``labels`` (``(N,)`` or ``(N, 1)``); or the same with ``_train`` /
    ``_test`` suffixes.

    ``target_kind`` says what the labels are, never guessed from them:
    ``"classes"`` (``labels``, any values naming classes), ``"regression"``
    (``targets`` or ``labels``: finite numbers, ``(N,)``, ``(N, 1)`` or
    ``(N, K)``) or ``"multilabel"`` (``targets`` or ``labels``: a 0/1 matrix
    ``(N, L)``; its labels are named ``"0"`` to ``"L-1"``). ``targets`` is read
    before ``labels`` when both are there. Regression and multi-label data
    without ``_train``/``_test`` get a plain seeded split.

    Every member's header is read first: one that claims more bytes than the
    archive holds (a truncated or crafted file), or arrays larger in all than the
    machine's memory, are refused by name before anything is allocated. Nothing
    is unpickled (object arrays are refused).
    """
    target_kind = check_target_kind(target_kind)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"NumPy archive {str(path)!r} does not exist")
    _check_npz_headers(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            archive = {key: npz[key] for key in names if key in _NPZ_KEYS}  # only what is used is read
    except _ARCHIVE_ERRORS as exc:
        raise _unreadable(path, exc) from None
    kind = "features" if any(k.startswith("features") for k in archive) else "images"
    if kind == "images" and not any(k.startswith("images") for k in archive):
        raise ValueError(f"{str(path)!r} must hold 'images' or 'features' and 'labels'; it holds {sorted(names)}")

    if target_kind == "classes" and any(k.startswith("targets") for k in archive) \
            and not any(k.startswith("labels") for k in archive):
        raise ValueError(f"{str(path)!r} holds 'targets', not 'labels': pass target_kind='regression' or "
                         "'multilabel' (--target-kind on the command line) to read them")

    def pair(suffix: str):
        x_key = f"{kind}{suffix}"
        y_key = next((key for key in (f"targets{suffix}", f"labels{suffix}") if key in archive
                      and (target_kind != "classes" or key.startswith("labels"))), None)
        if x_key not in archive or y_key is None:
            return None
        x, y = np.asarray(archive[x_key]), np.asarray(archive[y_key])
        if x.ndim == 0:
            raise ValueError(f"{x_key} in {str(path)!r} must have one row per sample; got a scalar")
        if y.ndim == 0 or len(x) != len(y):
            raise ValueError(f"{x_key} has {len(x)} rows but {y_key} has {len(y) if y.ndim else 'none (a scalar)'}")
        y = _npz_targets(y, f"{y_key} in {str(path)!r}", target_kind)
        return (_images(x, x_key) if kind == "images" else _features(x, x_key)), y

    train, test, whole = pair("_train"), pair("_test"), pair("")
    if target_kind != "classes":
        return _npz_other_targets(path, kind, target_kind, train, test, whole, test_fraction, seed)
    if train is not None and test is not None:
        classes, _ = _class_indices([*train[1].tolist(), *test[1].tolist()])
        lookup = {c: i for i, c in enumerate(classes)}
        idx = lambda ys: np.array([lookup[v] for v in ys], dtype=np.int64)  # noqa: E731
        return ImageData(path.stem, train[0], idx(train[1]), test[0], idx(test[1]), classes, kind,
                         _digest(str(path), train[0], test[0], train[1].tolist(), test[1].tolist()))
    if whole is None:
        raise ValueError(f"{str(path)!r} needs {kind!r} and 'labels' (or both with _train and _test suffixes)")
    classes, y = _class_indices(whole[1].tolist())
    return _split(path.stem, whole[0], y, classes, test_fraction=test_fraction, seed=seed,
                  fingerprint=_digest(str(path), whole[0], y), kind=kind)


def _npz_targets(y: np.ndarray, name: str, target_kind: str) -> np.ndarray:
    """An ``.npz``'s labels read as ``target_kind``: str (N,) class names, float64 targets or int64 0/1 (N, L)."""
    if target_kind == "multilabel":
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{name} (multi-label) must be a 0/1 matrix (N, L) of numbers; got dtype {y.dtype}")
        return check_multilabel(y, y.shape[0], name=name).astype(np.int64)
    if y.ndim == 2 and y.shape[1] == 1:  # a column of labels
        y = y[:, 0]
    if target_kind == "classes":
        if y.ndim != 1:
            raise ValueError(f"{name} must be (N,) or (N, 1); got shape {y.shape}"
                             + (" (a multi-label 0/1 matrix? pass target_kind='multilabel')" if y.ndim == 2 else ""))
        return y.astype(str)
    if y.dtype.kind not in "biuf" or y.ndim not in (1, 2):
        raise ValueError(f"{name} (regression targets) must be numbers, (N,) or (N, K); "
                         f"got shape {y.shape}, dtype {y.dtype}")
    if not np.isfinite(y).all():
        raise ValueError(f"{name} (regression targets) holds NaN or Inf at row "
                         f"{int(np.argwhere(~np.isfinite(y))[0][0])}; give finite numbers")
    return y.astype(np.float64)


def _npz_other_targets(path: Path, kind: str, target_kind: str, train, test, whole, test_fraction,
                       seed) -> ImageData:
    """The :class:`ImageData` of an ``.npz`` of regression or multi-label targets (see :func:`load_npz`)."""
    what = "'targets' (or 'labels')"
    if train is not None and test is not None:
        if train[1].shape[1:] != test[1].shape[1:]:
            raise ValueError(f"{str(path)!r}: the train and test targets have different columns "
                             f"({train[1].shape[1:]} and {test[1].shape[1:]})")
        names = _label_names(train[1], target_kind)
        return ImageData(path.stem, train[0], train[1], test[0], test[1], names, kind,
                         _digest(str(path), train[0], test[0], train[1], test[1], {"target_kind": target_kind}),
                         (), target_kind)
    if whole is None:
        raise ValueError(f"{str(path)!r} needs {kind!r} and {what} (or both with _train and _test suffixes)")
    return _split(path.stem, whole[0], whole[1], _label_names(whole[1], target_kind), test_fraction=test_fraction,
                  seed=seed, fingerprint=_digest(str(path), whole[0], whole[1]), kind=kind, target_kind=target_kind)


def _label_names(y: np.ndarray, target_kind: str) -> tuple[str, ...]:
    return tuple(str(j) for j in range(y.shape[1])) if target_kind == "multilabel" else ()


#: The arrays :func:`load_npz` reads; other members of an archive are left alone.
_NPZ_KEYS = frozenset(f"{kind}{suffix}" for kind in ("images", "features", "labels", "targets")
                      for suffix in ("", "_train", "_test"))

#: What reading a damaged zip archive or ``.npy`` member can raise.
_ARCHIVE_ERRORS = (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error)


def _unreadable(path: Path, exc: BaseException) -> ValueError:
    return ValueError(f"cannot read NumPy archive {str(path)!r}: {exc} (is it truncated? write it again with "
                      "numpy.savez)")


def _npy_headers(path: Path) -> list[tuple[str, tuple, np.dtype, int]]:
    """``(name, shape, dtype, bytes after the header)`` of the ``.npy`` members load_npz reads, from the headers."""
    from numpy.lib import format as npy

    headers = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy") or info.filename[:-4] not in _NPZ_KEYS:
                continue
            with archive.open(info) as member:
                version = npy.read_magic(member)
                read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _, dtype = read_header(member)
                headers.append((info.filename[:-4], shape, dtype, info.file_size - member.tell()))
    return headers


def _check_npz_headers(path: Path) -> None:
    """Refuse an ``.npz`` whose ``.npy`` members claim more bytes than they hold, or than memory allows.

    Only the headers are read (:mod:`numpy.lib.format` on each zip member): the
    shape and dtype give the array's size exactly, and the zip directory gives
    the member's size once unpacked, so nothing is allocated for a header that
    lies.
    """
    try:
        headers = _npy_headers(path)
    except _ARCHIVE_ERRORS as exc:
        raise _unreadable(path, exc) from None
    total, limit = 0, _task._memory_limit()
    for name, shape, dtype, held in headers:
        if dtype.hasobject:
            raise ValueError(f"NumPy archive {str(path)!r}: {name!r} holds Python objects, which are never "
                             "unpickled; save numbers (or uint8 pixels) instead")
        size = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if size > held:
            raise ValueError(f"NumPy archive {str(path)!r}: the header of {name!r} claims shape {shape} "
                             f"({size:,} bytes) but the file holds {held:,}; it is truncated or corrupt: "
                             "write it again with numpy.savez")
        total += size
        if total > limit:
            raise ValueError(f"NumPy archive {str(path)!r}: its arrays (up to {name!r}, shape {shape}) need "
                             f"{total:,} bytes, more than this machine's memory ({limit:,} bytes); "
                             "give fewer samples or smaller images")


def _features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "biuf" or not np.isfinite(x).all():
        raise ValueError(f"{name} must be a finite numeric (N, D) array; got shape {x.shape}, dtype {x.dtype}")
    return x.astype(np.float64)


def _images(x: np.ndarray, name: str) -> list[np.ndarray]:
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ValueError(f"{name} as floats must be finite and in [0, 1]; or give uint8 pixels")
        x = np.round(x * 255).astype(np.uint8)
    if x.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 pixels (or floats in [0, 1]); got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    elif x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3; got {x.shape}")
    return list(x)


def from_hf_dataset(dataset, *, image_column: str = "image", label_column: str = "label", test=None,
                    test_fraction: float = 0.2, seed: int = 0, name: str = "hf-dataset") -> ImageData:
    """A Hugging Face ``datasets.Dataset`` (or any sequence of dicts) of PIL images or arrays and labels.

    ``test``, another such dataset, is the test split; otherwise a seeded stratified split.
    """
    def read(ds):
        images, labels = [], []
        for i, row in enumerate(ds):
            if image_column not in row or label_column not in row:
                raise ValueError(f"row {i} has no {image_column!r} or {label_column!r}; its keys are {sorted(row)}")
            image = row[image_column]
            array = np.asarray(image.convert("L" if getattr(image, "mode", "RGB") in ("1", "L") else "RGB")) \
                if hasattr(image, "convert") else np.asarray(image)
            images.extend(_images(array[None], f"{image_column}[{i}]"))
            labels.append(str(row[label_column]))
        return images, labels

    x, labels = read(dataset)
    if test is not None:
        x_test, labels_test = read(test)
        classes, _ = _class_indices(labels + labels_test)
        lookup = {c: i for i, c in enumerate(classes)}
        y, y_test = (np.array([lookup[v] for v in ls], dtype=np.int64) for ls in (labels, labels_test))
        return ImageData(name, x, y, x_test, y_test, classes, "images", _digest(name, x, y, x_test, y_test))
    classes, y = _class_indices(labels)
    return _split(name, x, y, classes, test_fraction=test_fraction, seed=seed, fingerprint=_digest(name, x, y))


def load_data(path, *, test_fraction: float = 0.2, seed: int = 0, strict: bool = True,
              target_kind: str = "classes") -> ImageData:
    """An image folder, a ``.csv`` of paths and labels, or an ``.npz``: whichever ``path`` is.

    ``target_kind`` (``"classes"``, ``"regression"`` or ``"multilabel"``) says
    what the labels are (see :func:`load_csv` and :func:`load_npz`); an image
    folder's labels are its class folders, so it takes only ``"classes"``.
    """
    target_kind = check_target_kind(target_kind)
    path = Path(path)
    if path.is_dir():
        if target_kind != "classes":
            raise ValueError(f"an image folder's labels are its class folders: target_kind must be 'classes' for "
                             f"{str(path)!r}; got {target_kind!r} (give a .csv or an .npz of {target_kind} targets)")
        return load_image_folder(path, test_fraction=test_fraction, seed=seed, strict=strict)
    if path.suffix.lower() == ".csv":
        return load_csv(path, test_fraction=test_fraction, seed=seed, strict=strict, target_kind=target_kind)
    if path.suffix.lower() == ".npz":
        return load_npz(path, test_fraction=test_fraction, seed=seed, target_kind=target_kind)
    if not path.exists():
        raise ValueError(f"data {str(path)!r} does not exist")
    raise ValueError(f"data {str(path)!r} must be an image folder, a .csv of paths and labels, or an .npz")
