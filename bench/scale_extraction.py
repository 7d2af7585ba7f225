"""Extraction from an image folder through ``rank``: throughput against a bare loop, and flat memory.

Goals (issue 20), one line each in the form ``name: value (goal: ...)``:

``rank_extraction_throughput_ratio`` (goal >= 0.8)
    A folder of 2,000 random-content 224 x 224 JPEG files in 10 class
    subfolders, and a ResNet-50 built from ``transformers.ResNetConfig()``'s
    defaults with random weights (``ResNetForImageClassification``, saved with
    ``save_pretrained`` and given as ``hf:<folder>``). The rank path is timed
    end to end from an empty feature cache (``TRANSFERLAB_HOME`` in a fresh
    temporary folder)::

        rank_models([f"hf:{model}"], load_data(folder), ["logme"], bootstrap=0)

    loading and checking the 2,000 files, loading the model, decoding and
    resizing the images, the forward passes, writing and reading back the
    cache, and scoring. It extracts the train split (1,600 images). The bare
    loop is ``model(x)`` under ``torch.inference_mode`` over the same train
    images, already decoded and preprocessed into float tensors of the same
    batch size (64), timed alone (after one warm-up batch), half of it just
    before the rank path and half just after (a change in the machine's load
    then weighs on both). Both are rates (images per second); to keep the run
    short the bare loop times the first ``BARE_IMAGES`` of those images (a rate
    needs no more: every batch costs the same). The ratio is the rank rate over
    the bare rate. On a shared machine the ratio moves with the load of the
    other processes: run it on a quiet one.

``peak_rss_8000_over_2000_small_resnet`` (goal <= 1.3)
    The peak resident memory (``VmHWM`` in ``/proc/self/status`` of the child
    itself: on Linux its ``ru_maxrss`` would keep this process's size at the fork) of a
    subprocess that runs the same ``rank_models(..., load_data(folder), ...)``
    from an empty cache over a folder of 8,000 such JPEG files, over that of
    one over 2,000. ResNet-50 takes about 10 images per second on the 2-core
    machine this runs on, too slow for 10,000 images in the time allowed, so
    this line uses the same pipeline with a smaller ResNet (``ResNetConfig``
    with ``layer_type="basic"``, ``embedding_size=16``, ``hidden_sizes=[16,
    32, 64, 512]``, ``depths=[1, 1, 1, 1]``: 512-d features as a ResNet-18,
    about a tenth of its multiply-adds) at the same 224 px; hence ``small_resnet``
    in its name. What grows with the number of images is the same whatever the
    model: the list of files, and the features and probabilities, which are
    written to the cache in chunks and read back memory-mapped.

``quick=True`` uses 200 and 800 images (a smoke test; the ratios are noisier).

    .venv/bin/python bench/scale_extraction.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

#: Images per folder in the full run and in the quick one: (throughput and small memory run, large memory run).
SIZES = {False: (2000, 8000), True: (200, 800)}
#: Class subfolders of each folder.
CLASSES = 10
#: Batch size of both the rank path and the bare loop (rank_models' default).
BATCH = 64
#: Images the bare loop times (the first ones of the train split rank extracts).
BARE_IMAGES = 512

#: The child process of the memory line: rank a folder from an empty cache, print its own peak RSS.
#: Its peak is ``VmHWM`` of /proc/self/status, the high-water mark of the process's own memory: ``ru_maxrss``
#: is not, on Linux it keeps the parent's resident size at the fork (this parent holds the bare loop's tensors).
_CHILD = """
import json, sys, time
from transferlab.data import load_data
from transferlab.rank import rank_models
folder, model = sys.argv[1], sys.argv[2]
start = time.perf_counter()
ranking = rank_models([f"hf:{model}"], load_data(folder), ["logme"], bootstrap=0, progress=False)
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"peak_kib": hwm, "seconds": seconds, "logme": ranking.rows[0]["logme"]}))
"""


def _write_images(root: Path, n: int, *, seed: int, start: int = 0) -> None:
    """``n`` random-content 224 x 224 RGB JPEG files in ``CLASSES`` class subfolders of ``root`` (threads)."""
    from PIL import Image

    for c in range(CLASSES):
        (root / f"class{c:02d}").mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        # Uniform random pixels: the costliest content to decode (about 100 kB a file at quality 90).
        image = np.random.default_rng([seed, i]).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / f"class{i % CLASSES:02d}" / f"{i:05d}.jpg", quality=90)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(write, range(start, start + n)))


def _save_model(folder: Path, config) -> None:
    import torch
    import transformers

    with torch.random.fork_rng():
        torch.manual_seed(0)
        transformers.ResNetForImageClassification(config).eval().save_pretrained(folder)


@contextlib.contextmanager
def _environ(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _throughput(folder: Path, model_dir: Path, home: Path, device: str = "cpu") -> dict:
    """Images per second of the rank path (end to end, empty cache) and of the bare ``model(x)`` loop.

    The bare loop is timed in two halves, one just before and one just after the
    rank path, so that a change in the machine's load during the run weighs on both.
    """
    import torch
    import transformers

    from transferlab.data import load_data
    from transferlab.models import load_model
    from transferlab.rank import rank_models

    train = load_data(folder).x_train  # the images rank extracts (this read is not timed)
    preprocessing = load_model(f"hf:{model_dir}").preprocessing
    n_bare = min(len(train), BARE_IMAGES)
    batches = [preprocessing(list(train[lo: min(lo + BATCH, n_bare)])) for lo in range(0, n_bare, BATCH)]
    model = transformers.ResNetForImageClassification.from_pretrained(model_dir).eval().to(device)
    batches = [x.to(device) for x in batches]

    def bare(part) -> float:
        with torch.inference_mode():
            start = time.perf_counter()
            for x in part:
                model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - start

    with torch.inference_mode():
        model(batches[0][:8])  # warm-up
    half = (len(batches) + 1) // 2
    bare_seconds = bare(batches[:half])
    with _environ(TRANSFERLAB_HOME=str(home)):
        start = time.perf_counter()
        data = load_data(folder)
        ranking = rank_models([f"hf:{model_dir}"], data, ["logme"], bootstrap=0, progress=False, batch_size=BATCH,
                              device=device)
        rank_seconds = time.perf_counter() - start
    bare_seconds += bare(batches[half:])
    n_rank = len(data.x_train)
    assert np.isfinite(ranking.rows[0]["logme"])
    return {"rank_rate": n_rank / rank_seconds, "bare_rate": n_bare / bare_seconds, "n_rank": n_rank,
            "n_bare": n_bare, "rank_seconds": rank_seconds, "bare_seconds": bare_seconds}


def _peak_rss(folder: Path, model_dir: Path, home: Path) -> dict:
    """The peak resident memory (KiB) and seconds of a child process ranking ``folder`` from an empty cache."""
    env = {**os.environ, "TRANSFERLAB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(model_dir)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the ranking subprocess failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def extraction_lines(quick: bool = False, device: str = "cpu") -> list[str]:
    """The goal lines (and a few lines of context) of extraction from image folders; see the module docstring."""
    import transformers

    small, large = SIZES[bool(quick)]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    lines = []
    with tempfile.TemporaryDirectory(prefix="transferlab-bench-extraction-") as tmp:
        tmp = Path(tmp)
        _write_images(tmp / "small", small, seed=0)
        (tmp / "large").mkdir()
        for c in (tmp / "small").iterdir():  # the large folder: the small one's files and more
            (tmp / "large" / c.name).mkdir()
            for f in c.iterdir():
                os.link(f, tmp / "large" / c.name / f.name)
        _write_images(tmp / "large", large - small, seed=0, start=small)
        _save_model(tmp / "resnet50", transformers.ResNetConfig())
        _save_model(tmp / "small_resnet", transformers.ResNetConfig(
            layer_type="basic", embedding_size=16, hidden_sizes=[16, 32, 64, 512], depths=[1, 1, 1, 1]))

        rates = _throughput(tmp / "small", tmp / "resnet50", tmp / "home-throughput", device)
        lines.append(f"rank_extraction_images_per_second: rank {rates['rank_rate']:.2f} "
                     f"({rates['n_rank']} train images of {small}, {rates['rank_seconds']:.1f} s end to end), "
                     f"bare model(x) {rates['bare_rate']:.2f} ({rates['n_bare']} images, "
                     f"{rates['bare_seconds']:.1f} s); ResNet-50, 224 px, batch {BATCH}, {device}")
        lines.append(f"rank_extraction_throughput_ratio: {rates['rank_rate'] / rates['bare_rate']:.2f} "
                     "(goal: >= 0.8)")

        peaks = {n: _peak_rss(tmp / name, tmp / "small_resnet", tmp / f"home-{name}")
                 for n, name in ((small, "small"), (large, "large"))}
        lines.append(f"peak_rss_mib_small_resnet: {small} images {peaks[small]['peak_kib'] / 1024:.0f} "
                     f"({peaks[small]['seconds']:.1f} s), {large} images {peaks[large]['peak_kib'] / 1024:.0f} "
                     f"({peaks[large]['seconds']:.1f} s)")
        ratio = peaks[large]["peak_kib"] / peaks[small]["peak_kib"]
        lines.append(f"peak_rss_{large}_over_{small}_small_resnet: {ratio:.2f} (goal: <= 1.3)")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 and 800 images: a smoke test")
    parser.add_argument("--device", default="cpu", help="Where the throughput line runs (the memory line: CPU).")
    args = parser.parse_args(argv)
    for line in extraction_lines(quick=args.quick, device=args.device):
        print(line, flush=True)


if __name__ == "__main__":
    main()
