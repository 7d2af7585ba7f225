"""Analyses of what transfers: CKA, mistake agreement, weight distances, loss barriers,
module criticality, attribution, and the transfer bound.

``cka``, ``minibatch_cka``, ``mistake_agreement``, ``weight_distance``, ``loss_barrier``,
``criticality_from_grid``, ``half_shares`` and the terms of the transfer bound
(``transfer_bound``, ``conditional_entropy``, ``reweighted_source_loss``,
``transfer_wasserstein``, ``feature_lipschitz``, ``label_cost``) are pure NumPy/SciPy
(POT for the transport); ``interpolate``, ``module_criticality``,
``integrated_gradients``, ``fit_transforms`` and ``fit_smooth_head`` (the smooth
source head of the bound) run torch (and Captum for attribution), imported lazily.
"""

from transferlab.analysis._agreement import mistake_agreement, weight_distance
from transferlab.analysis._barrier import criticality_from_grid, loss_barrier
from transferlab.analysis._bound import (
    TaskTransform,
    TransferBound,
    conditional_entropy,
    feature_lipschitz,
    label_cost,
    reweighted_source_loss,
    transfer_bound,
    transfer_wasserstein,
)
from transferlab.analysis._cka import MinibatchCKA, cka, minibatch_cka
from transferlab.analysis._regions import half_shares


def __getattr__(name: str):
    # Model-running analyses load on first use: ``import transferlab.analysis`` stays free of torch.
    if name == "integrated_gradients":
        from transferlab.analysis._attribution import integrated_gradients

        return integrated_gradients
    if name == "module_criticality":
        from transferlab.analysis._criticality import module_criticality

        return module_criticality
    if name in ("fit_transforms", "TransformFit"):
        from transferlab.analysis import _bound_fit

        return getattr(_bound_fit, name)
    if name in ("fit_smooth_head", "SmoothHead"):
        from transferlab.analysis import _smooth_head

        return getattr(_smooth_head, name)
    if name == "interpolate":
        from transferlab.analysis._interpolation import interpolate

        return interpolate
    raise AttributeError(f"module 'transferlab.analysis' has no attribute {name!r}")


__all__ = [
    "cka", "minibatch_cka", "MinibatchCKA", "mistake_agreement", "weight_distance", "half_shares",
    "loss_barrier", "criticality_from_grid", "integrated_gradients", "interpolate", "module_criticality",
    "transfer_bound", "TransferBound", "TaskTransform", "conditional_entropy", "reweighted_source_loss",
    "transfer_wasserstein", "feature_lipschitz", "label_cost", "fit_transforms", "TransformFit",
    "fit_smooth_head", "SmoothHead",
]  # fmt: skip
