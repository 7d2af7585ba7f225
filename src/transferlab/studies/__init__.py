"""The demo and the studies: each a function from a preset to result tables, figures and a report.

Every study has one shape (:class:`Study`: a config dataclass, its jobs, how
their results are collected, its report) and runs through :func:`run_study`;
``run_selection`` and the others are :func:`run_study` for one study.
"""

from transferlab.studies._bound import BoundResult, run_bound
from transferlab.studies._correlation import CorrelationResult, run_correlation
from transferlab.studies._demo import PRESETS as DEMO_PRESETS
from transferlab.studies._demo import DemoPreset, DemoResult, run_demo
from transferlab.studies._selection import SelectionResult, run_selection
from transferlab.studies._study import ClaimsResult, JobSpec, Plan, Study, StudyRun, run_study
from transferlab.studies._what_transfers import WhatTransfersResult, run_what_transfers

__all__ = [
    "run_demo", "DemoPreset", "DemoResult", "DEMO_PRESETS",
    "run_selection", "SelectionResult", "run_correlation", "CorrelationResult",
    "run_what_transfers", "WhatTransfersResult", "run_bound", "BoundResult",
    "run_study", "Study", "JobSpec", "Plan", "StudyRun", "ClaimsResult",
]  # fmt: skip
