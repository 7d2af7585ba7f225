"""What the pool-level scores share: a validated pool, min-max normalisation across it, a shrinkage LDA.

Pool-level scores are not functions of one model's features: each of their
terms is min-max normalised across the candidate pool before the terms are
combined, so a candidate's score depends on the other candidates (adding a
model to the pool can change everyone's score). They register in the one score
registry with ``kind="pool"``: a pool score takes a sequence of feature
matrices, one per candidate, all on the same target samples, and returns one
float64 score per candidate, higher = better
(:meth:`~transferlab.scores._registry.ScoreSpec.compute_pool`).

- :func:`~transferlab.scores._ncti.ncti` (module ``_ncti``) and
  :func:`~transferlab.scores._etran.etran` (module ``_etran``) are the built-in ones.
- :data:`POOL_SCORES`, :func:`available_pool_scores`, :func:`get_pool_score` are
  thin views of the registry's pool scores, kept for older callers: prefer
  ``available(kind="pool")`` and ``spec(name)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
from scipy.linalg import eigh
from scipy.special import softmax

from transferlab._linalg import gram
from transferlab._validation import check_features, check_features_labels
from transferlab.scores._linalg import _class_sums
from transferlab.scores._registry import _REGISTRY

#: Smallest shrinkage of either LDA (the reference codes' ``max(..., 1e-10)``).
SHRINKAGE_FLOOR = 1e-10

# Eigenvalues of a shrunk within-class covariance below this fraction of the mean total
# variance are raised to it (only where the within-class scatter vanishes, e.g. classes
# collapsed to points), so that the LDA posterior stays finite.
_EIGENVALUE_FLOOR = 1e-12
# Values of one term that agree to this relative precision across the pool are "all equal".
_MINMAX_RTOL = 1e-12


# --------------------------------------------------------------------------- validation


def _check_pool(pool, labels) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Validated float64 copies of the pool's feature matrices, labels in ``0..C-1`` and ``C``."""
    if isinstance(pool, np.ndarray) and pool.ndim == 2:
        raise ValueError(
            f"pool must be a sequence of (n_samples, n_features) arrays, one per candidate model; "
            f"got a single 2-D array of shape {pool.shape}. Pass a list of the candidates' features"
        )
    if isinstance(pool, (str, bytes, Mapping)) or not hasattr(pool, "__iter__"):
        hint = "; for a dict of name -> features pass list(pool.values())" if isinstance(pool, Mapping) else ""
        raise ValueError(
            f"pool must be a sequence of (n_samples, n_features) arrays, one per candidate model; "
            f"got {type(pool).__name__}{hint}"
        )
    members = list(pool)
    if len(members) < 2:
        raise ValueError(
            f"pool must hold at least 2 candidate models (each term is min-max normalised across "
            f"the pool); got {len(members)}"
        )
    arrays = [check_features(member, name=f"pool[{i}]") for i, member in enumerate(members)]
    n = arrays[0].shape[0]
    for i, X in enumerate(arrays[1:], start=1):
        if X.shape[0] != n:
            raise ValueError(
                f"every model in pool must have features of the same samples: pool[0] has {n} rows "
                f"and pool[{i}] has {X.shape[0]}"
            )
    _, y, classes = check_features_labels(arrays[0], labels, min_per_class=1)
    return arrays, y, int(classes.shape[0])


def _minmax(values) -> np.ndarray:
    """``(v - min) / (max - min)`` across the pool; all zeros when the values are all equal."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    if not hi - lo > _MINMAX_RTOL * max(abs(lo), abs(hi)):
        return np.zeros_like(v)
    return (v - lo) / (hi - lo)


# --------------------------------------------------------------------------- shared LDA


class _LDA:
    """Gaussian linear discriminant analysis with a shrunk shared covariance (clean float64 input).

    The constructor centres ``Z`` (the posterior is translation-invariant), estimates the
    class priors ``pi_c = n_c / N``, the class means ``mu_c`` and the
    within-class covariance ``Sigma_w = (1/N) sum_i (z_i - mu_{y_i})(z_i - mu_{y_i})^T``
    (the prior-weighted per-class covariances) and its eigendecomposition;
    ``whiten(s)`` forms ``Sigma = (1 - s) Sigma_w + s (tr Sigma_w / k) I`` (same
    eigenvectors) and whitens the data and means by ``Sigma^{-1/2}``, after which

    - ``posterior()`` is ``softmax_c(w^T m_c - |m_c|^2 / 2 + log pi_c)``, the
      Bayes posterior of the Gaussian model ``z | c ~ N(mu_c, Sigma)``;
    - ``transform(r)`` projects onto the ``r`` leading discriminant directions
      (eigenvectors of the between-class covariance in whitened coordinates,
      i.e. the generalised eigenvectors of ``(Sigma_b, Sigma)`` normalised so
      that ``v^T Sigma v = 1``).
    """

    def __init__(self, Z: np.ndarray, y: np.ndarray, n_classes: int):
        n, k = Z.shape
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        self.priors = counts / n
        self.log_priors = np.log(self.priors)
        self.k = k
        self.Zc = Z - Z.mean(axis=0)
        self.means = _class_sums(self.Zc, y, n_classes) / counts[:, None]
        resid = self.Zc - self.means[y]
        within = gram(resid.T) / n
        self.total_scale = float(np.einsum("ij,ij->", self.Zc, self.Zc)) / (n * k) if k else 0.0
        # Shrinking towards a multiple of I keeps the eigenvectors: one decomposition serves
        # every shrinkage. Eigenvalues of a PSD matrix are >= 0 up to rounding.
        self.within_eigenvalues, self.within_eigenvectors = eigh(within) if k else (np.zeros(0), np.zeros((0, 0)))
        self.within_eigenvalues = np.maximum(self.within_eigenvalues, 0.0)

    def largest_within_eigenvalue(self) -> float:
        return float(self.within_eigenvalues[-1]) if self.k else 0.0

    def whiten(self, shrinkage: float) -> None:
        k = self.k
        if k == 0:
            self.W = self.Zc
            self.M = self.means
            return
        lam_w = self.within_eigenvalues
        lam = (1.0 - shrinkage) * lam_w + shrinkage * lam_w.mean()  # tr(Sigma_w) / k = mean eigenvalue
        floor = _EIGENVALUE_FLOOR * (self.total_scale if self.total_scale > 0 else 1.0)
        inv_root = self.within_eigenvectors / np.sqrt(np.maximum(lam, floor))  # z -> Sigma^{-1/2}, rotated
        self.W = self.Zc @ inv_root
        self.M = self.means @ inv_root

    def posterior(self) -> np.ndarray:
        logits = self.W @ self.M.T - 0.5 * np.einsum("cj,cj->c", self.M, self.M) + self.log_priors
        return softmax(logits, axis=1)

    def transform(self, n_components: int) -> np.ndarray:
        r = min(n_components, self.k)
        if r <= 0:
            return np.zeros((self.W.shape[0], 0))
        centred = self.M - self.priors @ self.M
        between = centred.T @ (self.priors[:, None] * centred)
        _, V = eigh(between)
        return self.W @ V[:, ::-1][:, :r]


def _true_class_probability(P: np.ndarray, y: np.ndarray) -> float:
    """Mean posterior probability of each sample's own class."""
    return float(np.mean(P[np.arange(y.shape[0]), y]))


# --------------------------------------------------------------------------- views of the registry


class _PoolScores(Mapping):
    """Read-only ``name -> function`` view of the pool-level scores in the registry."""

    def __getitem__(self, name: str) -> Callable[..., np.ndarray]:
        if name not in _REGISTRY.available(kind="pool"):
            raise KeyError(name)
        return _REGISTRY.spec(name).func

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY.available(kind="pool"))

    def __len__(self) -> int:
        return len(_REGISTRY.available(kind="pool"))

    def __repr__(self) -> str:
        return f"POOL_SCORES({', '.join(self)})"


#: The pool-level scores by name (read-only), derived from the registry. Each maps
#: ``(pool, labels, **options)`` to one float64 score per candidate.
POOL_SCORES: Mapping[str, Callable[..., np.ndarray]] = _PoolScores()


def available_pool_scores() -> list[str]:
    """Sorted names of the pool-level scores: ``available(kind="pool")``.

    Examples
    --------
    >>> available_pool_scores()
    ['etran', 'ncti']
    """
    return _REGISTRY.available(kind="pool")


def get_pool_score(name: str) -> Callable[..., np.ndarray]:
    """The pool-level score function registered under ``name``: ``spec(name).func`` for a pool score.

    Lookup ignores case and surrounding spaces and treats ``-`` as ``_``.

    Raises
    ------
    ValueError
        If ``name`` is not a pool-level score; the message lists the valid names
        and the closest match.

    Examples
    --------
    >>> get_pool_score("NCTI").__name__
    'ncti'
    """
    return _REGISTRY.spec(name, kind="pool").func
