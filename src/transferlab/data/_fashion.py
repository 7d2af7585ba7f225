"""Fashion-MNIST: find the IDX files on disk (or download them) and load a :class:`Task`.

Fashion-MNIST (H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017)
has 60,000 training and 10,000 test images of 28x28 grey-level Zalando
article photos in ten classes, stored as four IDX files.

Search order (the first complete folder wins):

1. the explicit ``path`` argument (when given, it is the only folder searched);
2. ``$TRANSFERLAB_DATA/fashion-mnist`` (default ``~/.cache/transferlab/data``);
3. ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``);
4. with ``download=True`` only: the official mirror, verified by SHA-256, into
   the folder of step 1 or 2.

Checksums. The official files are identified by the MD5s published in the
Fashion-MNIST repository. The SHA-256s below were computed from the Debian
package's files: Debian rewrites the gzip header (drops the stored file name,
resets the timestamp) but keeps the deflate stream, and restoring the original
header (file name, mtime 1504176606 or 1504176627, i.e. 2017-08-31) gives
files whose MD5s equal the official ones and whose SHA-256s and sizes equal
those listed by TensorFlow Datasets (``url_checksums/fashion_mnist.txt``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from transferlab._atomic import atomic_path
from transferlab._validation import check_seed
from transferlab.data._idx import read_idx
from transferlab.data._task import Task

__all__ = ["FASHION_CLASSES", "data_home", "download_fashion", "fashion_location", "load_fashion"]

#: The ten official class names, in label order.
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Role -> file name without ``.gz``.
_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: SHA-256 of the official ``.gz`` files (see the module docstring).
_GZ_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
#: The official MD5s as published by the Fashion-MNIST repository (documentation only).
_GZ_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
#: SHA-256 of each decoded array's bytes (``array.tobytes()``), from the Debian files.
_ARRAY_SHA256: dict[str, str] = {
    "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "train_labels": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "test_labels": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}

_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_DEFAULT_HOME = Path("~/.cache/transferlab/data")
_SUBDIR = "fashion-mnist"
_FIX_HINT = (
    "To fix, either install the Debian package (sudo apt-get install dataset-fashion-mnist), "
    "or download the official files with load_fashion(download=True) or "
    "`transferlab data download fashion`."
)

_CACHE: dict[tuple, Task] = {}
_CACHE_SIZE = 2


def data_home() -> Path:
    """The transferlab data folder: ``$TRANSFERLAB_DATA`` or ``~/.cache/transferlab/data``."""
    env = os.environ.get("TRANSFERLAB_DATA", "")
    return Path(env).expanduser() if env else _DEFAULT_HOME.expanduser()


def fashion_location(path: str | os.PathLike | None = None) -> Path | None:
    """The folder :func:`load_fashion` would read from, or ``None`` if none has the files.

    Parameters
    ----------
    path : str or path-like, optional
        An explicit folder. When given, it is the only folder considered.

    Returns
    -------
    pathlib.Path or None
        The first folder of the search order (see the module docstring) that
        holds all four IDX files, gzip-compressed or not.
    """
    for folder in _search_dirs(path):
        if _find_files(folder) is not None:
            return folder
    return None


def load_fashion(path: str | os.PathLike | None = None, *, download: bool = False, seed: int = 0) -> Task:
    """Load Fashion-MNIST as a :class:`Task` (60,000 train / 10,000 test, 10 classes).

    Parameters
    ----------
    path : str or path-like, optional
        A folder with ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (or the
        same names without ``.gz``). When given, no other folder is searched.
    download : bool, default False
        If no folder has the files, download them from the official mirror
        into ``path`` or ``$TRANSFERLAB_DATA/fashion-mnist``, verified by SHA-256.
    seed : int, default 0
        Seed of the permutation applied to the order of the samples within
        each split. The split itself is the official one.

    Returns
    -------
    Task
        Images ``uint8`` of shape ``(N, 1, 28, 28)``, labels ``int64`` in
        ``0..9``, :data:`FASHION_CLASSES` as class names. The recipe records the
        seed, the split sizes and a digest of the decoded arrays
        (``content_sha256``), so another copy of the same data has the same
        fingerprint and different data never does.

    Raises
    ------
    FileNotFoundError
        If no folder has the files and ``download`` is False; the message
        lists every folder searched and how to get the data.
    ValueError
        If the files are malformed (see :func:`~transferlab.data._idx.read_idx`),
        image and label counts disagree, images are not 28x28 ``uint8`` or
        labels leave ``0..9``.
    """
    seed = check_seed(seed)
    if not isinstance(download, bool):
        raise ValueError(f"download must be True or False; got {download!r}")
    folder = fashion_location(path)
    if folder is None:
        if not download:
            raise FileNotFoundError(_not_found_message(path))
        folder = download_fashion(path)
    files = _find_files(folder)
    if files is None:  # pragma: no cover - a folder emptied between the two looks
        raise FileNotFoundError(_not_found_message(path))
    key = (tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files.values()), seed)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _load_folder(files, seed)
    return _CACHE[key]


def download_fashion(path: str | os.PathLike | None = None, *, force: bool = False) -> Path:
    """Download the four official Fashion-MNIST files and verify their SHA-256.

    Each file goes to a temporary name in the destination folder and is
    renamed only once its checksum matches, so a failed or tampered download
    leaves nothing behind. Files already present with the right checksum are
    kept unless ``force``.

    Parameters
    ----------
    path : str or path-like, optional
        Destination folder; default ``$TRANSFERLAB_DATA/fashion-mnist``.
    force : bool, default False
        Download even the files that are already present and verified.

    Returns
    -------
    pathlib.Path
        The destination folder.

    Raises
    ------
    ValueError
        If a downloaded file's SHA-256 differs from the official one.
    OSError
        If no mirror could be reached.
    """
    dest = Path(path).expanduser() if path is not None else data_home() / _SUBDIR
    dest.mkdir(parents=True, exist_ok=True)
    for name, expected in _GZ_SHA256.items():
        target = dest / name
        if target.is_file() and not force and _sha256_file(target) == expected:
            continue
        _download_one(name, expected, target)
    return dest


class _ChecksumError(ValueError):
    pass


def _download_one(name: str, expected: str, target: Path) -> None:
    errors: list[str] = []
    bad_checksum = False
    for mirror in _MIRRORS:
        url = mirror + name
        try:
            # atomic_path removes the temporary file on any exception.
            with atomic_path(target) as tmp:
                _fetch(url, tmp)
                got = _sha256_file(tmp)
                if got != expected:
                    raise _ChecksumError(f"{url}: SHA-256 {got}, expected {expected}")
            return
        except _ChecksumError as exc:
            bad_checksum = True
            errors.append(str(exc))
        except (OSError, urllib.error.URLError) as exc:
            errors.append(f"{url}: {exc}")
    detail = "; ".join(errors)
    if bad_checksum:
        raise ValueError(f"checksum mismatch downloading {name}; the download was discarded ({detail})")
    raise OSError(f"could not download {name} from any mirror ({detail})")


def _fetch(url: str, dest: Path) -> None:
    """Stream ``url`` into the file ``dest`` (the one network call; tests replace it)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _search_dirs(path: str | os.PathLike | None) -> list[Path]:
    if path is not None:
        return [Path(path).expanduser()]
    return [data_home() / _SUBDIR, _SYSTEM_DIR]


def _find_files(folder: Path) -> dict[str, Path] | None:
    found: dict[str, Path] = {}
    for role, stem in _FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            return None
    return found


def _not_found_message(path: str | os.PathLike | None) -> str:
    places = []
    for folder in _search_dirs(path):
        if path is not None:
            how = "path argument"
        elif folder == _SYSTEM_DIR:
            how = "Debian package dataset-fashion-mnist"
        elif os.environ.get("TRANSFERLAB_DATA"):
            how = "$TRANSFERLAB_DATA/fashion-mnist"
        else:
            how = "$TRANSFERLAB_DATA unset: ~/.cache/transferlab/data/fashion-mnist"
        places.append(f"  - {folder} ({how})")
    names = ", ".join(f"{stem}.gz" for stem in _FILES.values())
    return (
        "Fashion-MNIST not found. Searched:\n"
        + "\n".join(places)
        + f"\nEach folder needs the four files {names} (or the same names without .gz).\n"
        + _FIX_HINT
    )


def _load_folder(files: dict[str, Path], seed: int) -> Task:
    arrays = {role: read_idx(p) for role, p in files.items()}
    digests = {role: hashlib.sha256(arr.tobytes()).hexdigest() for role, arr in arrays.items()}
    splits = {}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_path, lab_path = files[f"{split}_images"], files[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise ValueError(
                f"{img_path}: Fashion-MNIST images must be uint8 of shape (N, 28, 28); "
                f"got {images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"{lab_path}: Fashion-MNIST labels must be 1-D integers; got {labels.dtype} of shape {labels.shape}"
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"Fashion-MNIST {split} split: {img_path.name} has {images.shape[0]} images but "
                f"{lab_path.name} has {labels.shape[0]} labels; the counts must agree"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(
                f"{lab_path}: Fashion-MNIST labels must lie in 0..9; got range {labels.min()}..{labels.max()}"
            )
        splits[split] = (images, labels.astype(np.int64))
    rng_train, rng_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    order_train = rng_train.permutation(splits["train"][1].shape[0])
    order_test = rng_test.permutation(splits["test"][1].shape[0])
    content = hashlib.sha256("".join(digests[r] for r in _FILES).encode()).hexdigest()[:16]
    recipe = {
        "source": "fashion",
        "seed": seed,
        "n_train": int(order_train.size),
        "n_test": int(order_test.size),
        "content_sha256": content,
        "official": digests == _ARRAY_SHA256,
    }
    return Task(
        name="fashion",
        x_train=splits["train"][0][order_train][:, None],
        y_train=splits["train"][1][order_train],
        x_test=splits["test"][0][order_test][:, None],
        y_test=splits["test"][1][order_test],
        class_names=FASHION_CLASSES,
        recipe=recipe,
    )
