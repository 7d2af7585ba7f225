"""Analyses of what transfers: CKA, mistake agreement, weight distances, attribution.

(Module criticality is still to come.) ``cka``, ``minibatch_cka``, ``mistake_agreement``,
``weight_distance``, ``loss_barrier`` and ``half_shares`` are pure NumPy; ``interpolate`` and ``integrated_gradients``
run models (torch, and Captum for the latter, imported lazily).
"""

from transferlab.analysis._agreement import mistake_agreement, weight_distance
from transferlab.analysis._barrier import loss_barrier
from transferlab.analysis._cka import MinibatchCKA, cka, minibatch_cka
from transferlab.analysis._regions import half_shares


def __getattr__(name: str):
    # Model-running analyses load on first use: ``import transferlab.analysis`` stays free of torch.
    if name == "integrated_gradients":
        from transferlab.analysis._attribution import integrated_gradients

        return integrated_gradients
    if name == "interpolate":
        from transferlab.analysis._interpolation import interpolate

        return interpolate
    raise AttributeError(f"module 'transferlab.analysis' has no attribute {name!r}")


__all__ = [
    "cka", "minibatch_cka", "MinibatchCKA", "mistake_agreement", "weight_distance", "half_shares",
    "loss_barrier", "integrated_gradients", "interpolate",
]  # fmt: skip
