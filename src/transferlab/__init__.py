"""transferlab: predict, measure and explain transfer learning.

Subpackages load on first use (``transferlab.scores`` never imports torch):

- ``data``: built-in sources and task operations
- ``models``: architectures with named stages, safetensors checkpoints
- ``train``: fit, fine-tune, linear probe
- ``features``: batched extraction and its on-disk cache
- ``scores``: transferability scores (pure NumPy) and their registry
- ``evaluate``: how good a ranking is
- ``analysis``: what transfers (integrated-gradients attribution, ...)
- ``zoo``: model-zoo recipes and builds
- ``rank``: rank candidate models (a zoo's members, your own) for a target
- ``runner``: the results store
- ``report``: tables and figures
- ``studies``: the demo and the studies
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = (
    "data", "models", "train", "features", "scores", "evaluate", "analysis", "zoo", "rank", "runner", "report", "studies",
)
__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"transferlab.{name}")
    raise AttributeError(f"module 'transferlab' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
