"""The demo and the studies: each a function from a preset to result tables, figures and a report."""

from transferlab.studies._bound import BoundResult, run_bound
from transferlab.studies._correlation import CorrelationResult, run_correlation
from transferlab.studies._demo import PRESETS as DEMO_PRESETS
from transferlab.studies._demo import DemoPreset, DemoResult, run_demo
from transferlab.studies._rank import Ranking, default_scores, rank_zoo
from transferlab.studies._rank_models import rank_models
from transferlab.studies._selection import SelectionResult, run_selection
from transferlab.studies._what_transfers import WhatTransfersResult, run_what_transfers

__all__ = [
    "run_demo", "DemoPreset", "DemoResult", "DEMO_PRESETS", "rank_zoo", "rank_models", "Ranking", "default_scores",
    "run_selection", "SelectionResult", "run_correlation", "CorrelationResult",
    "run_what_transfers", "WhatTransfersResult", "run_bound", "BoundResult",
]  # fmt: skip
