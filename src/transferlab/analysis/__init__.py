"""Analyses of what transfers: attribution (more to come: CKA, barriers, criticality)."""

from transferlab.analysis._attribution import integrated_gradients
from transferlab.analysis._regions import half_shares

__all__ = ["integrated_gradients", "half_shares"]
