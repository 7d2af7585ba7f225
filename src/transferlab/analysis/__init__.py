"""Analyses of what transfers: CKA, mistake agreement, weight distances, attribution.

(Loss barriers and module criticality are still to come.) ``cka``, ``minibatch_cka``,
``mistake_agreement``, ``weight_distance`` and ``half_shares`` are pure NumPy; ``integrated_gradients``
runs a model (torch and Captum, imported lazily).
"""

from transferlab.analysis._agreement import mistake_agreement, weight_distance
from transferlab.analysis._cka import MinibatchCKA, cka, minibatch_cka
from transferlab.analysis._regions import half_shares


def __getattr__(name: str):
    if name == "integrated_gradients":  # keeps ``import transferlab.analysis`` free of torch
        from transferlab.analysis._attribution import integrated_gradients

        return integrated_gradients
    raise AttributeError(f"module 'transferlab.analysis' has no attribute {name!r}")


__all__ = [
    "cka", "minibatch_cka", "MinibatchCKA", "mistake_agreement", "weight_distance", "half_shares",
    "integrated_gradients",
]  # fmt: skip
