"""Training: fit from scratch, fine-tune with a learning-rate grid, a linear probe on features.

The probe of a model (extraction, then :func:`fit_linear_probe`) is
:func:`transferlab.features.linear_probe`; the smooth source head of the transfer
bound is :func:`transferlab.analysis.fit_smooth_head`.
"""

from transferlab.train._config import TrainConfig
from transferlab.train._fine_tune import FineTuneResult, fine_tune, stratified_split
from transferlab.train._fit import FitResult, NonFiniteLossError, as_arrays, evaluate, fit
from transferlab.train._multidomain import fit_multidomain, interleave_batches
from transferlab.train._probe import ProbeResult, fit_linear_probe, standardise

__all__ = [
    "TrainConfig",
    "fit",
    "FitResult",
    "evaluate",
    "as_arrays",
    "NonFiniteLossError",
    "fine_tune",
    "FineTuneResult",
    "stratified_split",
    "fit_linear_probe",
    "standardise",
    "fit_multidomain",
    "interleave_batches",
    "ProbeResult",
]
