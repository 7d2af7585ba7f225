"""A table of bad inputs run through the CLI: each exits with code 2 and one line naming the cause.

Every row of :data:`BAD_INPUTS` is ``(id, argv, setup, fragment)``:

- ``argv`` -- the command line; ``{tmp}`` in an argument is replaced by the test's ``tmp_path``;
- ``setup(tmp_path, monkeypatch)`` -- builds the bad files (or environment, or a fault) under
  ``tmp_path`` before the command runs (:func:`_nothing` when none is needed);
- ``fragment`` -- text the one message line must contain, verbatim (``{tmp}`` replaced as in ``argv``).

The test asserts exit code 2, exactly one non-empty line of output (stdout and
stderr together), the fragment in it, and no traceback. To add a case, write its
setup function here and append a row.
"""

from __future__ import annotations

import errno

import pytest
from typer.testing import CliRunner

from transferlab.cli import app

runner = CliRunner()


def _nothing(tmp_path, monkeypatch) -> None:
    """No set-up: the argv alone is the bad input."""


def _out_is_a_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "out").write_text("not a folder\n")


def _csv_is_a_folder(tmp_path, monkeypatch) -> None:
    (tmp_path / "ranking.csv").mkdir()


def _home_is_a_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "home").write_text("not a folder\n")
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))


def _home_read_only(tmp_path, monkeypatch) -> None:
    # As root chmod does not stop writes: make every folder creation under the home fail as
    # a read-only file system does.
    import os
    from pathlib import Path

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if str(self).startswith(str(home)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)


def _disk_full(tmp_path, monkeypatch) -> None:
    # A full disk fails the write (or its fsync) with an OSError that names no file.
    import os

    import numpy as np

    from transferlab import _atomic

    np.savez(tmp_path / "feats.npz", features=np.random.default_rng(0).normal(size=(20, 3)), labels=np.arange(20) % 2)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_atomic.os, "fsync", full)


def _default_out_is_a_file(tmp_path, monkeypatch) -> None:
    _npz_features(tmp_path, monkeypatch)
    (tmp_path / "transferlab-out").mkdir()
    (tmp_path / "transferlab-out" / "rank-feats").write_text("not a folder\n")
    monkeypatch.chdir(tmp_path)


def _out_inside_a_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "f").write_text("not a folder\n")


def _presets_is_a_folder(tmp_path, monkeypatch) -> None:
    (tmp_path / "presets.toml").mkdir()


def _no_cuda(tmp_path, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _user_images(root) -> None:
    """Two classes of three small PNGs under ``root`` (helper of the --data rows)."""
    import numpy as np
    from PIL import Image

    for c in ("ant", "bee"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 30 * i, dtype=np.uint8)).save(root / c / f"{i}.png")


def _csv_short_row(tmp_path, monkeypatch) -> None:
    _user_images(tmp_path / "data")
    (tmp_path / "list.csv").write_text("path,label\ndata/ant/0.png,ant\ndata/bee/0.png\n")


def _csv_with_bom(tmp_path, monkeypatch) -> None:
    _user_images(tmp_path / "data")
    rows = ["path,label"] + [f"data/{c}/{i}.png,{c}" for c in ("ant", "bee") for i in range(3)]
    (tmp_path / "list.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")


def _npz_truncated(tmp_path, monkeypatch) -> None:
    import numpy as np

    np.savez(tmp_path / "feats.npz", features=np.ones((40, 4)), labels=np.arange(40) % 2)
    data = (tmp_path / "feats.npz").read_bytes()
    (tmp_path / "feats.npz").write_bytes(data[: len(data) // 2])


def _npz_huge_header(tmp_path, monkeypatch) -> None:
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    features = io.BytesIO()
    np.save(features, np.zeros((4, 2)))
    with zipfile.ZipFile(tmp_path / "feats.npz", "w") as archive:
        archive.writestr("features.npy", features.getvalue())
        archive.writestr("labels.npy", header.getvalue() + bytes(16))


def _image_bomb(tmp_path, monkeypatch) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    _user_images(tmp_path / "data")
    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)  # a header claiming 2.5e9 pixels
    (tmp_path / "data" / "bee" / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _npz_features(tmp_path, monkeypatch) -> None:
    import numpy as np

    np.savez(tmp_path / "feats.npz", features=np.random.default_rng(0).normal(size=(20, 3)),
             labels=np.arange(20) % 2)


def _store_not_sqlite(tmp_path, monkeypatch) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "results.sqlite").write_bytes(b"not a database " * 100)
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))



def _crafted_checkpoint(tmp_path, monkeypatch) -> None:
    # A valid checkpoint whose header describes a convnet of 9e14 values: refused before any allocation.
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from transferlab.models import ConvNet, save_checkpoint

    _user_images(tmp_path / "data")
    path = save_checkpoint(tmp_path / "crafted.safetensors", ConvNet(widths=(4, 8), num_classes=3))
    with safe_open(str(path), framework="pt") as fh:
        document = json.loads(fh.metadata()["transferlab"])
    document["config"]["widths"] = [10**7, 10**7]
    save_file(load_file(str(path)), str(path), metadata={"transferlab": json.dumps(document)})

def _results_csv(text: str):
    """A set-up writing ``text`` to ``{tmp}/results.csv`` (the input of ``transferlab evaluate``)."""

    def setup(tmp_path, monkeypatch) -> None:
        (tmp_path / "results.csv").write_text(text)

    return setup


_GOOD_RESULTS = "target,model,accuracy,logme\nt,a,70,0.1\nt,b,80,0.3\n"


BAD_INPUTS = [
    ("out-is-a-file", ["demo", "--preset", "tiny", "-q", "--out", "{tmp}/out"], _out_is_a_file,
     "is a file, not a folder"),
    ("rank-out-is-a-file", ["rank", "--target", "glyphs:greek", "--preset", "tiny", "-q", "--out", "{tmp}/out"],
     _out_is_a_file, "is a file, not a folder"),
    ("csv-is-a-folder", ["rank", "--target", "glyphs:greek", "--preset", "tiny", "-q", "--out", "{tmp}/o",
                         "--csv", "{tmp}/ranking.csv"], _csv_is_a_folder, "is a folder, not a file"),
    ("home-is-a-file", ["zoo", "build", "builtin", "--preset", "tiny", "-q"], _home_is_a_file, "TRANSFERLAB_HOME"),
    ("home-read-only", ["zoo", "build", "builtin", "--preset", "tiny", "-q"], _home_read_only, "permission denied"),
    ("disk-full", ["rank", "--models", "", "--data", "{tmp}/feats.npz", "-q", "--out", "{tmp}/o"], _disk_full,
     "no space left on device while writing {tmp}/o/ranking.csv"),
    ("default-out-is-a-file", ["rank", "--models", "", "--data", "{tmp}/feats.npz", "-q"], _default_out_is_a_file,
     "transferlab-out/rank-feats is a file where a folder is expected"),
    ("out-inside-a-file", ["demo", "--preset", "tiny", "-q", "--out", "{tmp}/f/out"], _out_inside_a_file,
     "cannot be created: {tmp}/f is a file, not a folder"),
    ("presets-is-a-folder", ["study", "selection", "--preset", "tiny", "-q", "--presets", "{tmp}/presets.toml"],
     _presets_is_a_folder, "{tmp}/presets.toml' is a folder, not a file; give a .toml file"),
    ("zoo-name-with-markup", ["zoo", "list", "[/x]", "--preset", "tiny"], _nothing, "[/x]"),
    ("device-unknown", ["rank", "--target", "glyphs:greek", "--preset", "tiny", "--device", "nosuch"], _nothing,
     "device 'nosuch'"),
    ("device-cuda-absent", ["zoo", "build", "builtin", "--preset", "tiny", "--device", "cuda"], _no_cuda,
     "device 'cuda' was asked for but CUDA is not available here; use --device cpu"),
    ("demo-device-unknown", ["demo", "--preset", "tiny", "--device", "gpu0"], _nothing, "device 'gpu0'"),
    ("score-with-markup", ["rank", "--target", "glyphs:greek", "--preset", "tiny", "--scores", "[/x]"], _nothing,
     "[/x]"),
    ("csv-short-row", ["rank", "--models", "file:{tmp}/m.safetensors", "--data", "{tmp}/list.csv", "-q"],
     _csv_short_row, "line 3: 1 field(s) where the header has 2 (path, label)"),
    ("csv-bom-is-read", ["rank", "--models", "file:{tmp}/m.safetensors", "--data", "{tmp}/list.csv", "-q"],
     _csv_with_bom, "m.safetensors' does not exist"),  # past the CSV: its columns were found
    ("npz-truncated", ["rank", "--models", "", "--data", "{tmp}/feats.npz", "-q"], _npz_truncated,
     "feats.npz': File is not a zip file (is it truncated?"),
    ("npz-huge-header", ["rank", "--models", "", "--data", "{tmp}/feats.npz", "-q"], _npz_huge_header,
     "the header of 'labels' claims shape (1000000000000,)"),
    ("image-bomb", ["rank", "--models", "file:{tmp}/m.safetensors", "--data", "{tmp}/data", "-q"], _image_bomb,
     "bomb.png': refused as a possible decompression bomb"),
    ("shots-too-large", ["rank", "--models", "", "--data", "{tmp}/feats.npz", "--shots", "99", "-q"],
     _npz_features, "shots=99 needs 99 train samples per class, but in task 'feats' '0' (index 0) has 8"),
    ("shots-overflow", ["rank", "--models", "", "--data", "{tmp}/feats.npz", "--shots", str(2**64), "-q"],
     _npz_features, f"shots={2**64} needs {2**64} train samples per class"),
    ("per-class-beyond-memory", ["rank", "--target", "glyphs:greek", "--preset", "tiny", "--per-class", str(10**12),
                                 "-q"], _nothing, "n_train_per_class=1000000000000 and n_test_per_class="),
    ("target-seed-not-a-number", ["rank", "--target", "shapes,seed=abc", "--preset", "tiny", "-q"], _nothing,
     "invalid option seed=abc in spec 'shapes,seed=abc': seed must be an integer >= 0; got 'abc'"),
    ("target-size-conflicts-with-per-class",
     ["rank", "--target", "glyphs:greek,n_train_per_class=5", "--per-class", "50", "--preset", "tiny", "-q"], _nothing,
     "--per-class 50 conflicts with n_train_per_class=5 in --target 'glyphs:greek,n_train_per_class=5'; "
     "give the size once: drop --per-class, or drop n_train_per_class from the spec"),
    ("store-not-sqlite", ["demo", "--preset", "tiny", "-q", "--out", "{tmp}/o"], _store_not_sqlite,
     "results store {tmp}/home/results.sqlite is damaged (file is not a database); "
     "delete or move {tmp}/home/results.sqlite to start afresh"),
    ("checkpoint-crafted-architecture",
     ["rank", "--models", "file:{tmp}/crafted.safetensors", "--data", "{tmp}/data", "-q"], _crafted_checkpoint,
     "checkpoint {tmp}/crafted.safetensors cannot be rebuilt (arch 'convnet' with config {'in_channels': 1, "
     "'num_classes': 3, 'widths': [10000000, 10000000]}): it describes a model of more than 1,073,741,824 values"),
    ("evaluate-missing-column", ["evaluate", "{tmp}/results.csv", "--out", "{tmp}/o"],
     _results_csv("target,model,logme\nt,a,0.1\nt,b,0.3\n"),
     "the results table lacks the column(s) accuracy"),
    ("evaluate-accuracy-not-a-number", ["evaluate", "{tmp}/results.csv", "--out", "{tmp}/o"],
     _results_csv("target,model,accuracy,logme\nt,a,70,0.1\nt,b,high,0.3\n"),
     "row 2: accuracy must be a number; got 'high'"),
    ("evaluate-nan-score", ["evaluate", "{tmp}/results.csv", "--out", "{tmp}/o"],
     _results_csv("target,model,accuracy,logme\nt,a,70,nan\nt,b,80,0.3\n"),
     "row 1: score logme must be a finite number; got 'nan'"),
    ("evaluate-one-model", ["evaluate", "{tmp}/results.csv", "--out", "{tmp}/o"],
     _results_csv(_GOOD_RESULTS + "u,a,70,0.2\n"),
     "target 'u' (regime 'full') has 1 model; a ranking needs at least 2"),
    ("evaluate-duplicate-row", ["evaluate", "{tmp}/results.csv", "--out", "{tmp}/o"],
     _results_csv(_GOOD_RESULTS + "t,a,71,0.2\n"),
     "row 3: target 't', regime 'full', model 'a' appears twice"),
    ("evaluate-unknown-baseline", ["evaluate", "{tmp}/results.csv", "--baseline", "generic", "--out", "{tmp}/o"],
     _results_csv(_GOOD_RESULTS), "--baseline 'generic' is not a model of target 't'"),
    ("evaluate-missing-file", ["evaluate", "{tmp}/absent.csv", "--out", "{tmp}/o"], _nothing,
     "results table {tmp}/absent.csv does not exist"),
    ("evaluate-header-only", ["evaluate", "{tmp}/results.csv", "--out", "{tmp}/o"],
     _results_csv("target,model,accuracy,logme\n"), "has no data rows"),
]


@pytest.mark.parametrize("argv, setup, fragment", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_code_2(argv, setup, fragment, tmp_path, monkeypatch):
    setup(tmp_path, monkeypatch)
    result = runner.invoke(app, [arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1, result.output
    assert fragment.replace("{tmp}", str(tmp_path)) in lines[0], lines[0]


def test_the_table_ids_are_unique():
    ids = [row[0] for row in BAD_INPUTS]
    assert len(ids) == len(set(ids))
