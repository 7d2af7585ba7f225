"""Scores at scale (issue 20): the default scores of ``transferlab rank`` at N = 50,000, D = 2048.

Every score of :func:`transferlab.rank.default_scores` (logme, leep, nce, knn,
linear_probe, source_accuracy, parameters) is called once, as the ranker calls
it (``spec(name).compute`` with the inputs a candidate has, ``seed=0`` for a
seeded score), on synthetic inputs of the size of a real target: N = 50,000
samples of D = 2048 float64 features (what a ResNet-50 gives, as the ranker reads
them back from its float64 cache), with C = 100 and again C = 1000 balanced
target classes, and source-head probabilities over Z = 1000 source classes for
LEEP and NCE. The features have class structure (class means plus unit noise,
``bench/scores.py``'s ``_class_data`` at strength 0.5); the source logits are a
per-class mean plus noise, as in ``bench/scores.py``'s ``_score_inputs`` (there
with Z = 10). Lines, each ``name: value (goal: ...)``:

- ``<score>_c<C>_over_extraction``: the seconds of the call over the seconds
  needed to extract those N images at 224 px with a ResNet-50 on this machine,
  estimated as ``N / throughput``; the throughput (images/s) is measured on a
  bare ``model(x)`` loop (``torch.inference_mode``) of
  ``ResNetForImageClassification(ResNetConfig())`` (transformers' defaults are
  ResNet-50; random weights) over a few batches of 3x224x224 float tensors,
  after one warm-up batch. Goal <= 0.2.
- ``peak_memory_gib``: the peak resident memory of the whole process (the
  largest of its ``VmHWM`` readings, which are reset before each score through
  ``/proc/self/clear_refs`` so that each score's own peak is shown too; where
  that is not available, ``getrusage``'s ``ru_maxrss``). Goal < 8.
- ``<score>_sample_cap``: the default sample cap of every default score that
  has one (:attr:`~transferlab.scores.ScoreSpec.max_samples`), with the samples
  it then reads; no goal, shown. kNN averages its leave-one-out votes over about
  ``max_samples`` class-stratified queries (each against all N samples); the
  linear probe is cross-validated on about ``max_samples`` class-stratified
  samples.

Each score's seconds and peak are printed too (``..._seconds``, no goal).
``--blas`` adds a measurement of :func:`transferlab._linalg.one_blas_thread`
beside torch: LogME and kNN (2,000 queries) at C = 100, after the ResNet-50 has
run in this process, with NumPy's BLAS at its default threads and then held to
one (each score then runs twice more).

    .venv/bin/python bench/scale_scores.py            # full size: a few minutes, one process
    .venv/bin/python bench/scale_scores.py --quick    # N = 5,000: a smoke test (goals not meaningful)

:func:`score_lines` returns the lines (``bench/scale.py`` prints them).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from scores import _class_data  # noqa: E402  (bench/scores.py, on the path above: the same class structure)

from transferlab._linalg import one_blas_thread  # noqa: E402
from transferlab.rank import default_scores  # noqa: E402
from transferlab.scores import spec  # noqa: E402

#: Samples, feature dimension, target classes, source classes (full size).
N, D, CLASSES, SOURCE_CLASSES = 50_000, 2048, (100, 1000), 1000
#: Samples in ``quick`` mode (a smoke test).
QUICK_N = 5_000
#: Goals: each score's time over the estimated extraction time; the process's peak memory (GiB).
RATIO_GOAL = 0.2
MEMORY_GOAL_GIB = 8.0
#: The priors' inputs: a source accuracy and ResNet-50's number of parameters.
SOURCE_ACCURACY = 0.76
N_PARAMETERS = 25_557_032
#: Images per batch and timed batches of the ResNet-50 throughput (full size, quick).
BATCH, BATCHES = 16, 3
QUICK_BATCH, QUICK_BATCHES = 4, 1


class _PeakMemory:
    """The process's peak resident memory, with a per-stage peak where Linux allows resetting it."""

    def __init__(self):
        self.overall = 0
        self.resettable = self._try_reset()

    @staticmethod
    def _hwm() -> int | None:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def _try_reset(self) -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            return self._hwm() is not None
        except OSError:
            return False

    def read(self) -> int:
        """The peak since the last :meth:`reset` (or the process's peak), in bytes; kept in :attr:`overall`."""
        peak = self._hwm() if self.resettable else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.overall = max(self.overall, peak)
        return peak

    def reset(self) -> None:
        self.read()  # the peak so far stays in `overall`
        if self.resettable:
            self._try_reset()


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f}"


def resnet50_images_per_second(batch: int = BATCH, batches: int = BATCHES) -> float:
    """Images/s of a bare ``model(x)`` loop of a random-weight transformers ResNet-50 on 3x224x224 floats."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    model = ResNetForImageClassification(ResNetConfig()).eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
        seconds = time.perf_counter() - start
    del model, x
    gc.collect()
    return batch * batches / seconds


def _inputs(n: int, c: int, seed: int) -> dict:
    """The inputs of every default score: float64 features (N, D) with C classes, source probabilities (N, Z)."""
    rng = np.random.default_rng(seed)
    features, labels = _class_data(rng, n, D, c, strength=0.5)
    logits = 2.0 * rng.normal(size=(c, SOURCE_CLASSES))[labels]
    logits += rng.normal(size=(n, SOURCE_CLASSES))
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits, out=logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return {"labels": labels, "features": features, "source_probs": probs,
            "source_accuracy": SOURCE_ACCURACY, "n_parameters": N_PARAMETERS}


def _call(name: str, inputs: dict):
    """One call of a score as the ranker makes it: its needs by keyword, ``seed=0`` when seeded.

    Keys of ``inputs`` that are not a need's argument (``max_samples``) are passed as options.
    """
    s = spec(name)
    needs = {"labels", "features", "source_probs", "source_accuracy", "n_parameters"}
    options = {"seed": 0} if s.seeded else {}
    options.update({key: value for key, value in inputs.items() if key not in needs})
    return s.compute(**{key: value for key, value in inputs.items() if key in needs}, **options)


def _timed_score(name: str, inputs: dict, memory: _PeakMemory) -> tuple[float, float, int]:
    """``(value, seconds, peak bytes)`` of one call."""
    gc.collect()
    memory.reset()
    start = time.perf_counter()
    value = _call(name, inputs)
    seconds = time.perf_counter() - start
    return value, seconds, memory.read()


def score_lines(quick: bool = False, *, blas: bool = False) -> list[str]:
    """The bench's lines: each default score's time over extraction at C = 100 and 1000, the caps, the peak memory.

    Parameters
    ----------
    quick : bool, default False
        N = 5,000 (and a smaller throughput measurement): a smoke test, goals not meaningful.
    blas : bool, default False
        Also time LogME and kNN at C = 100 with NumPy's BLAS held to one thread
        (:func:`~transferlab._linalg.one_blas_thread`) against its default.
    """
    return list(iter_score_lines(quick, blas=blas))


def iter_score_lines(quick: bool = False, *, blas: bool = False):
    """:func:`score_lines`, one line at a time as each is measured (for printing progress)."""
    n = QUICK_N if quick else N
    memory = _PeakMemory()
    names = default_scores()
    throughput = resnet50_images_per_second(*((QUICK_BATCH, QUICK_BATCHES) if quick else (BATCH, BATCHES)))
    extraction = n / throughput
    yield from [
        f"# scores at scale: N={n}, D={D}, C in {CLASSES}, {SOURCE_CLASSES} source classes; "
        f"{', '.join(names)}; one call each" + (" (quick: goals not meaningful)" if quick else ""),
        f"resnet50_images_per_second: {throughput:.2f} (no goal; shown: bare model(x), batch "
        f"{QUICK_BATCH if quick else BATCH}, 224 px, torch threads {_torch_threads()})",
        f"extraction_seconds_estimate: {extraction:.1f} (no goal; shown: {n} / images per second)",
    ]
    for name in names:
        cap = spec(name).max_samples
        if cap is not None:
            reads = f"reads about {min(cap, n)} of {n} samples" if n > cap else f"every one of {n} samples"
            yield f"{name}_sample_cap: {cap} (no goal; shown: {reads})"
    missed = []
    for c in CLASSES:
        inputs = _inputs(n, c, seed=c)
        for name in names:
            value, seconds, peak = _timed_score(name, inputs, memory)
            ratio = seconds / extraction
            yield f"{name}_c{c}_seconds: {seconds:.2f} (no goal; shown: value {value:.6g}, peak {_gib(peak)} GiB)"
            yield f"{name}_c{c}_over_extraction: {ratio:.4f} (goal: <= {RATIO_GOAL})"
            if ratio > RATIO_GOAL:
                missed.append(f"{name}_c{c}")
        if blas and c == CLASSES[0]:
            yield from _blas_lines(inputs, memory)
        del inputs
        gc.collect()
    peak = max(memory.read(), memory.overall)
    yield f"peak_memory_gib: {_gib(peak)} (goal: < {MEMORY_GOAL_GIB:g})"
    yield f"scores_missing_goal: {', '.join(missed) if missed else 'none'}"


def _blas_lines(inputs: dict, memory: _PeakMemory) -> list[str]:
    """LogME and kNN timed with NumPy's BLAS at its default threads, then held to one (torch loaded and run).

    kNN on 2,000 queries (``max_samples=2000``) to keep the check short: its cost is
    one product per block of queries, the same kind of work at any cap.
    """
    lines = []
    for name, options in (("logme", {}), ("knn", {"max_samples": 2000})):
        call = {**inputs, **options}
        _, default_s, _ = _timed_score(name, call, memory)
        with one_blas_thread():
            _, one_s, _ = _timed_score(name, call, memory)
        lines.append(f"{name}_one_blas_thread_speedup: {default_s / one_s:.2f} (no goal; shown: default "
                     f"{default_s:.2f} s, one BLAS thread {one_s:.2f} s{', max_samples=2000' if options else ''})")
    return lines


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 5,000: a smoke test.")
    parser.add_argument("--blas", action="store_true", help="Also measure one_blas_thread on LogME and kNN.")
    args = parser.parse_args()
    for line in iter_score_lines(args.quick, blas=args.blas):
        print(line, flush=True)


if __name__ == "__main__":
    main()
