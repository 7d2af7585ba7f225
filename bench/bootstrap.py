"""Cost of the ranking's bootstrap against the feature extraction it follows (issue 16).

Goal: the stratified bootstrap (100 resamples) of every default score together
costs at most the feature extraction time, one line each, ``name: value (goal: <= 1.0)``:

(a) ``byo_bootstrap_over_extraction``: ``rank_models`` with the default scores on
    the bring-your-own example (``examples/byo_example.py``: two Hugging Face
    models built from configs and one of our checkpoints, 10 classes x 12
    images), from an empty feature cache; the ranking's own timings
    (``seconds["bootstrap"]`` against ``seconds["features"]``, which covers the
    one extraction pass that gives features and source probabilities).
(b) ``n10000_bootstrap_over_extraction``: at N = 10,000, D = 512, C = 10 (the
    sizes of ``bench/scores.py``), the bootstrap of every default score that
    resamples (LogME, LEEP, NCE with 10 source classes; kNN, the linear probe
    and the priors say in their spec that they are not resampled) against the
    extraction of those 10,000 images with the built-in ConvNet (D = 512), as
    timed by ``bench/scores.py``.

    .venv/bin/python bench/bootstrap.py            # both lines (about a minute)
    .venv/bin/python bench/bootstrap.py --quick    # smaller (b): a smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples"))


def byo_ratio(seed: int) -> tuple[float, float]:
    """``(bootstrap_s, extraction_s)`` of a default-score ranking of the byo example, empty cache."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRANSFERLAB_HOME"] = str(Path(tmp) / "home")
        import byo_example

        from transferlab.data import load_data
        from transferlab.rank import rank_models

        out = Path(tmp) / "byo"
        byo_example.main(out)
        images = load_data(out / "images", seed=seed)
        specs = [f"hf:{out}/hf-resnet", f"hf:{out}/hf-vit", f"file:{out}/convnet-digits.safetensors"]
        ranking = rank_models(specs, images, None, seed=seed, progress=False)
        return ranking.seconds["bootstrap"], ranking.seconds["features"] + ranking.seconds.get("source_probs", 0.0)


def n10000_ratio(n: int, d: int, c: int, seed: int, resamples: int) -> tuple[float, float, dict]:
    """``(bootstrap_s, extraction_s, per_score_s)`` at N = n, D = d, C = c."""
    from scores import _extraction_seconds, _score_inputs

    from transferlab.rank import default_scores
    from transferlab.rank._bootstrap import bootstrap_score
    from transferlab.scores import spec

    extraction_s, _ = _extraction_seconds(n, seed, "cpu", 1)
    inputs = _score_inputs(np.random.default_rng(seed + 2), n, d, c)
    labels = inputs.pop("labels")
    per_score = {}
    for name in default_scores():
        score = spec(name)
        if not score.traits.resample:
            continue
        arrays = {k: v for k, v in inputs.items() if k in _arguments(score)}
        options = {"seed": seed} if score.seeded else {}
        start = time.perf_counter()
        bootstrap_score(score, labels, arrays, seed=seed, resamples=resamples, options=options)
        per_score[name] = time.perf_counter() - start
    return sum(per_score.values()), extraction_s, per_score


def _arguments(score) -> set:
    from transferlab.scores import NEED_ARGUMENTS

    return {a for need in score.needs for a in NEED_ARGUMENTS[need]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="(b) at N = 1000: a smoke test.")
    parser.add_argument("--resamples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    boot_s, extract_s = byo_ratio(args.seed)
    print(f"byo_bootstrap_seconds: {boot_s:.3f} (extraction {extract_s:.3f} s, 3 models, default scores)")
    print(f"byo_bootstrap_over_extraction: {boot_s / extract_s:.3f} (goal: <= 1.0)")
    n = 1000 if args.quick else 10000
    boot_s, extract_s, per_score = n10000_ratio(n, 512, 10, args.seed, args.resamples)
    detail = ", ".join(f"{k} {v:.2f} s" for k, v in per_score.items())
    print(f"n{n}_bootstrap_seconds: {boot_s:.3f} ({detail}; extraction {extract_s:.3f} s, convnet D=512)")
    print(f"n{n}_bootstrap_over_extraction: {boot_s / extract_s:.3f} (goal: <= 1.0)")


if __name__ == "__main__":
    main()
