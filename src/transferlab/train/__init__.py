"""Training: fit from scratch, fine-tune with a learning-rate grid, linear probe, smooth heads."""

from transferlab.train._config import TrainConfig
from transferlab.train._fine_tune import FineTuneResult, fine_tune
from transferlab.train._fit import FitResult, NonFiniteLossError, evaluate, fit
from transferlab.train._multidomain import fit_multidomain, interleave_batches
from transferlab.train._probe import ProbeResult, fit_linear_probe, linear_probe
from transferlab.train._smooth_head import SmoothHead, fit_smooth_head

__all__ = [
    "TrainConfig",
    "fit",
    "FitResult",
    "evaluate",
    "NonFiniteLossError",
    "fine_tune",
    "FineTuneResult",
    "linear_probe",
    "fit_linear_probe",
    "fit_smooth_head",
    "SmoothHead",
    "fit_multidomain",
    "interleave_batches",
    "ProbeResult",
]
