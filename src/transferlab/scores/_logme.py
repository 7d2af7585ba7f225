"""LogME: the maximum log evidence of a Bayesian linear model on the features.

You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for
Transfer Learning", ICML 2021.

The public :func:`logme` validates its input once; :func:`_logme_fit` does the
math on clean arrays and returns the per-target evidences, hyper-parameters and
iteration counts (the tests compare them with a direct Gaussian likelihood).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from transferlab._linalg import gram, weighted_gram
from transferlab._validation import (
    check_features,
    check_features_labels,
    check_int,
    check_sample_weight,
    check_scalar,
    check_targets,
)
from transferlab.scores._registry import register_score

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class _LogMEFit:
    """Per-target results of the evidence maximisation.

    Attributes
    ----------
    evidence : ndarray of shape (n_targets,)
        The maximised log evidence ``L(alpha, beta)`` of each target column (not
        divided by ``n_samples``).
    alpha, beta : ndarray of shape (n_targets,)
        The prior precision and the noise precision at the fixed point.
    n_iter : ndarray of shape (n_targets,), int
        Fixed-point iterations used per target.
    converged : ndarray of shape (n_targets,), bool
        Whether the fixed-point iteration met its stopping rule within
        ``max_iter`` (see :func:`_logme_fit`).
    polished : ndarray of shape (n_targets,), bool
        Whether the profile search of :func:`_profile_max` found a higher evidence
        than the fixed point's iterate (which it then replaced).
    """

    evidence: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    polished: np.ndarray


def _spectrum(F: np.ndarray, Y: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero spectrum of ``F^T F`` and the targets in the matching coordinates.

    With the thin SVD ``F = U diag(sqrt(s)) V^T`` restricted to the ``r`` non-zero
    eigenvalues ``s`` of ``F^T F``, returns ``s`` (r,), ``Z = (U^T Y)^T`` (K, r) and
    the squared norm of the part of each column of ``Y`` orthogonal to the column
    space of ``F`` (K,), exactly 0 when ``r = N``. When ``D <= N`` the
    eigendecomposition is of ``F^T F`` (D x D) and ``U`` is never formed:
    ``U^T Y = diag(s)^-1/2 V^T (F^T Y)`` and the residual is ``Y - F B`` with the
    least-squares coefficients ``B = V diag(s)^-1 V^T F^T Y``, both O(N D K).
    Otherwise it is of ``F F^T`` (N x N). Computed once for all targets. With
    positive ``weights`` it is the spectrum of ``sqrt(w) F`` with targets
    ``sqrt(w) Y`` (``F^T W F`` by :func:`~transferlab._linalg.weighted_gram`).
    """
    n, d = F.shape
    if weights is not None and d > n:  # the N x N form works on the rows scaled by sqrt(w)
        root = np.sqrt(weights)[:, None]
        return _spectrum(F * root, Y * root)
    if d <= n:
        s, V = np.linalg.eigh(gram(F.T) if weights is None else weighted_gram(F, weights))
    else:
        s, U = np.linalg.eigh(gram(F))
    keep = s > max(s[-1], 0.0) * max(n, d) * np.finfo(np.float64).eps
    s = s[keep]
    if d <= n:
        V = V[:, keep]
        Z = (V.T @ (F.T @ (Y if weights is None else Y * weights[:, None]))) / np.sqrt(s)[:, None]
        fitted = F @ (V @ (Z / np.sqrt(s)[:, None]))
    else:
        U = U[:, keep]
        Z = U.T @ Y
        fitted = U @ Z
    if s.shape[0] == n:  # the columns of F span R^N: nothing of Y lies outside
        perp = np.zeros(Y.shape[1])
    elif weights is None:
        perp = np.sum((Y - fitted) ** 2, axis=0)
    else:
        perp = weights @ (Y - fitted) ** 2
    return s, Z.T.copy(), perp


def _ratio(alpha: np.ndarray, beta: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``q = beta s / alpha`` (K, r); ``alpha = inf`` (the prior switched off) gives 0."""
    return beta[:, None] * s / alpha[:, None]


def _evidence(alpha, beta, s, z2, perp, n):
    """Log evidence ``L(alpha, beta)`` of each target, (K,).

    The evidence is the density of ``y ~ N(0, beta^-1 I + alpha^-1 F F^T)``. In
    the coordinates of :func:`_spectrum` the covariance has eigenvalue
    ``c_i = 1/beta + s_i/alpha`` along ``u_i`` (i <= r) and ``1/beta`` on the
    ``N - r`` directions outside the column space of ``F``, so

    .. math::

        L = -\\frac{N}{2}\\log 2\\pi - \\frac12\\sum_{i\\le r}\\Big(\\log c_i + \\frac{z_i^2}{c_i}\\Big)
            + \\frac{N - r}{2}\\log\\beta - \\frac{\\beta}{2}\\lVert y_\\perp\\rVert^2,

    which equals the paper's expression (each of the ``D - r`` zero eigenvalues
    of ``F^T F`` contributes ``log alpha`` to the log det and cancels with
    ``D/2 log alpha``) and stays finite at ``alpha = inf`` and, when ``r = N``,
    as ``beta -> inf``.
    """
    c = 1.0 / beta[:, None] + s / alpha[:, None]
    out = -0.5 * n * _LOG_2PI - 0.5 * np.sum(np.log(c) + z2 / c, axis=1) - 0.5 * beta * perp
    if n > s.shape[0]:
        out = out + 0.5 * (n - s.shape[0]) * np.log(beta)
    return out


def _alpha_gap(alpha, beta, s, z2):
    """Upper bound on ``|L(alpha, beta) - L(inf, beta)|`` (K,), free of cancellation."""
    q = _ratio(alpha, beta, s)
    return 0.5 * np.sum(np.log1p(q), axis=1) + 0.5 * beta * np.sum(z2 * q / (1.0 + q), axis=1)


def _beta_gap(alpha, beta, s, z2):
    """Upper bound on ``|L(alpha, beta) - L(alpha, inf)|`` (K,) when ``r = N`` (perp = 0)."""
    q = _ratio(alpha, beta, s)
    return 0.5 * np.sum(np.log1p(1.0 / q), axis=1) + 0.5 * np.sum(
        z2 * (alpha[:, None] / s) / (1.0 + q), axis=1
    )


def _relatively_close(new: np.ndarray, old: np.ndarray, tol: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (new == old) | (np.abs(new - old) <= tol * np.abs(old))


def _logme_fit(
    F: np.ndarray, Y: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6, weights: np.ndarray | None = None
) -> _LogMEFit:
    """Maximise the evidence of every column of ``Y`` (clean float64 input).

    All targets iterate together (vectorised over columns); a target stops when
    the relative change of both ``alpha`` and ``beta`` is at most ``tol``. The
    supremum of the evidence can lie on a boundary, where the fixed point drifts
    off slowly: ``alpha -> inf`` when the features explain nothing of a target
    (``gamma -> 0``), and ``beta -> inf`` (no noise) when ``N <= D`` and the
    target is interpolated. So ``alpha`` (``beta``) also counts as converged once
    the evidence is within ``tol * N`` of its limit at ``alpha = inf``
    (``beta = inf``).

    With ``weights`` ``w`` (non-negative, clean) the likelihood of sample ``i``
    counts ``w_i`` times: the evidence depends on the data only through
    ``F^T W F``, ``F^T W y``, ``y^T W y`` and ``N = sum w``, so it is that of
    ``sqrt(w) F`` and ``sqrt(w) y`` with ``N = sum w`` (integer weights: the data
    with row ``i`` repeated ``w_i`` times).

    Parameters
    ----------
    F : ndarray of shape (n_samples, n_features), float64
    Y : ndarray of shape (n_samples, n_targets), float64
    max_iter : int
    tol : float
    weights : ndarray of shape (n_samples,), optional

    Returns
    -------
    _LogMEFit
    """
    n = F.shape[0]
    if weights is not None:
        keep = weights > 0
        F, Y, weights, n = F[keep], Y[keep], weights[keep], float(np.sum(weights))
    # The evidence maximum is invariant to F -> cF (alpha absorbs c^2). Scaling by a power
    # of two (exact in float64) to max|F| in [0.5, 1) keeps F^T F clear of overflow and
    # underflow over the whole float64 range; alpha is scaled back at the end.
    exponent = int(np.frexp(np.max(np.abs(F), initial=0.0))[1])
    F = np.ldexp(F, -exponent)
    s, Z, perp = _spectrum(F, Y, weights)
    interpolated = s.shape[0] == F.shape[0]  # perp = 0: beta -> inf may be the supremum
    if interpolated and n <= F.shape[0] * (1 + 1e-9):
        n = F.shape[0]  # weights that sum to the number of rows up to rounding
    if interpolated and n > F.shape[0]:
        raise ValueError(
            f"sample weights sum to {n:g} over {F.shape[0]} rows that the features interpolate: "
            "the weighted evidence is unbounded (repeated rows fitted without noise). Use positive "
            "weights that sum to the number of rows (a Bayesian bootstrap), or more samples than features"
        )
    z2 = Z**2
    k = Y.shape[1]
    alpha = np.ones(k)
    beta = np.ones(k)
    n_iter = np.zeros(k, dtype=np.int64)
    converged = np.zeros(k, dtype=bool)
    stopped = np.zeros(k, dtype=bool)  # beta left the representable range
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for _ in range(max_iter):
            act = np.flatnonzero(~converged & ~stopped)
            if act.size == 0:
                break
            q = _ratio(alpha[act], beta[act], s)
            gamma = np.sum(q / (1.0 + q), axis=1)
            m2 = np.sum(z2[act] * q**2 / (s * (1.0 + q) ** 2), axis=1)
            res = perp[act] + np.sum(z2[act] / (1.0 + q) ** 2, axis=1)
            # gamma = m2 = 0 (alpha already infinite, or y orthogonal to the features) keeps alpha = inf
            new_alpha = np.where(m2 > 0, gamma / m2, np.inf)
            new_beta = (n - gamma) / res
            ok = np.isfinite(new_beta) & (new_beta > 0) & (new_alpha > 0)
            stopped[act[~ok]] = True
            act, new_alpha, new_beta = act[ok], new_alpha[ok], new_beta[ok]
            beta_done = _relatively_close(new_beta, beta[act], tol)
            alpha_done = _relatively_close(new_alpha, alpha[act], tol) | (
                _alpha_gap(new_alpha, new_beta, s, z2[act]) <= tol * n
            )
            if interpolated:
                beta_done |= _beta_gap(new_alpha, new_beta, s, z2[act]) <= tol * n
            alpha[act], beta[act] = new_alpha, new_beta
            n_iter[act] += 1
            converged[act] = alpha_done & beta_done
    evidence = _evidence(alpha, beta, s, z2, perp, n)
    # The fixed point's stopping rule is not scale-free: from alpha = beta = 1 it can stop
    # far from the maximum when F is far from unit scale, or crawl on a flat evidence.
    # The profile search is scale-covariant (its grid follows the spectrum), so keeping
    # the better of the two makes the value invariant to F -> cF.
    polished = np.zeros(k, dtype=bool)
    if s.size:
        log_lam, best = _profile_max(s, z2, perp, n, evidence)
        polished = np.isfinite(best) & ~(best <= evidence + 1e-10 * np.maximum(1.0, np.abs(best)))
        lam = np.exp(log_lam[polished])
        beta[polished] = n / (perp[polished] + np.sum(z2[polished] / (1.0 + s / lam[:, None]), axis=1))
        alpha[polished] = lam * beta[polished]
        evidence[polished] = best[polished]
    with np.errstate(over="ignore"):  # alpha of features near 1e300 is beyond float64: inf
        alpha = np.ldexp(alpha, 2 * exponent)
    return _LogMEFit(
        evidence=evidence,
        alpha=alpha,
        beta=beta,
        n_iter=n_iter,
        converged=converged,
        polished=polished,
    )


def _profile(log_lam: np.ndarray, s: np.ndarray, z2: np.ndarray, perp: np.ndarray, n: int) -> np.ndarray:
    """Evidence maximised over ``beta`` at fixed ``lambda = alpha / beta`` (K, G).

    ``log_lam`` is (G,), one grid shared by all targets, or (K, G), one per target.
    With ``lambda`` fixed the covariance is ``beta^-1 M(lambda)``; the best
    ``beta`` is ``N / Q`` with ``Q = perp + sum z_i^2 / (1 + s_i / lambda)``, so
    ``L*(lambda) = -N/2 log 2 pi - 1/2 sum log(1 + s_i/lambda) + N/2 log(N/Q) - N/2``.
    """
    if log_lam.ndim == 1:  # shared grid: the log det term is the same for every target
        ratio = s / np.exp(log_lam)[:, None]  # (G, r)
        log_det = np.sum(np.log1p(ratio), axis=1)[None, :]
        q_total = perp[:, None] + z2 @ (1.0 / (1.0 + ratio)).T
    else:
        ratio = s / np.exp(log_lam)[:, :, None]  # (K, G, r)
        log_det = np.sum(np.log1p(ratio), axis=2)
        q_total = perp[:, None] + np.einsum("kr,kgr->kg", z2, 1.0 / (1.0 + ratio))
    return -0.5 * n * _LOG_2PI - 0.5 * log_det + 0.5 * n * np.log(n / q_total) - 0.5 * n


def _profile_max(s, z2, perp, n, floor=None, *, n_grid: int = 161, n_zoom: int = 9, width: float = 1e-7):
    """Global maximum of :func:`_profile` over ``t = log(alpha / beta)``, per target.

    A grid of ``t`` from ``log(s_min) - 20`` to ``log(s_max) + 20`` (beyond which the
    profile equals its limits at ``alpha = inf`` or ``beta = inf`` to about ``e^-20``)
    locates the maximum; then each target's bracket (the best grid point's two
    neighbours) is zoomed on with ``n_zoom`` points a round until it is narrower
    than ``width``. Every step is relative to the spectrum, so scaling ``F`` by ``c``
    shifts the search by ``2 log c`` and finds the same maximum. Vectorised over
    targets, in blocks that bound the memory; returns ``(log_lambda, value)``, each (K,).
    A target whose best grid value does not exceed ``floor`` (K,) (the evidence the
    fixed point already reached) is not zoomed on: the grid found nothing better.
    """
    block = max(1, 2_000_000 // (n_zoom * s.size))
    if z2.shape[0] > block:
        parts = [
            _profile_max(s, z2[i : i + block], perp[i : i + block], n, None if floor is None else floor[i : i + block],
                         n_grid=n_grid, n_zoom=n_zoom, width=width)
            for i in range(0, z2.shape[0], block)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    grid = np.linspace(np.log(s[0]) - 20.0, np.log(s[-1]) + 20.0, n_grid)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        values = np.nan_to_num(_profile(grid, s, z2, perp, n), nan=-np.inf)
        i = np.argmax(values, axis=1)
        best_t, best = grid[i], values[np.arange(i.size), i]
        active = np.arange(i.size) if floor is None else np.flatnonzero(~(best <= floor))
        if active.size == 0:
            return best_t, best
        i = i[active]
        lo, hi = grid[np.maximum(i - 1, 0)], grid[np.minimum(i + 1, n_grid - 1)]
        at, ab = best_t[active], best[active]
        z2a, perpa = z2[active], perp[active]
        steps = np.linspace(0.0, 1.0, n_zoom)
        while np.max(hi - lo) > width:
            ts = lo[:, None] + (hi - lo)[:, None] * steps  # (K, n_zoom)
            vals = np.nan_to_num(_profile(ts, s, z2a, perpa, n), nan=-np.inf)
            j = np.argmax(vals, axis=1)
            rows = np.arange(j.size)
            better = vals[rows, j] > ab
            at = np.where(better, ts[rows, j], at)
            ab = np.where(better, vals[rows, j], ab)
            lo, hi = ts[rows, np.maximum(j - 1, 0)], ts[rows, np.minimum(j + 1, n_zoom - 1)]
        best_t[active], best[active] = at, ab
    return best_t, best


def _check_iteration(max_iter, tol) -> tuple[int, float]:
    max_iter = check_int(max_iter, "max_iter")
    return max_iter, check_scalar(tol, "tol", numbers.Real, min_val=0, include_boundaries="neither")


@register_score(
    "logme",
    needs={"features"},
    reference='You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models '
    'for Transfer Learning", ICML 2021',
    # Bayesian evidence: one-hot targets need no per-class variance; constant F has rank
    # one; the evidence maximum is invariant to F -> cF (alpha absorbs c^2). The linear
    # model has no intercept, so adding a constant to F changes the evidence.
    min_per_class=1,
    scale_invariant=True,
    translation_invariant=False,
)
def logme(
    features, labels, *, regression: bool = False, max_iter: int = 100, tol: float = 1e-6, sample_weight=None
) -> float:
    """LogME: mean maximised log evidence per sample of a Bayesian linear model.

    For each target column ``y`` (the one-hot indicator of each class, or each
    regression target) the model is ``y = F w + eps`` with prior
    ``w ~ N(0, alpha^-1 I)`` and noise ``eps ~ N(0, beta^-1 I)``. The log evidence

    .. math::

        L(\\alpha, \\beta) = \\frac{D}{2}\\log\\alpha + \\frac{N}{2}\\log\\beta
            - \\frac{N}{2}\\log 2\\pi - \\frac{\\beta}{2}\\lVert F m - y\\rVert^2
            - \\frac{\\alpha}{2}\\lVert m\\rVert^2
            - \\frac{1}{2}\\log\\det(\\alpha I + \\beta F^\\top F),
        \\qquad m = \\beta(\\alpha I + \\beta F^\\top F)^{-1} F^\\top y,

    is maximised by the paper's fixed-point iteration
    ``gamma = sum_i beta s_i / (alpha + beta s_i)``, ``alpha = gamma / m^T m``,
    ``beta = (N - gamma) / ||F m - y||^2`` (``s_i`` the eigenvalues of ``F^T F``),
    from ``alpha = beta = 1`` until the relative change of both is below ``tol``
    (or, where the supremum lies at ``alpha = inf`` or ``beta = inf``, until the
    evidence is within ``tol`` per sample of that limit). The fixed point's start
    and stopping rule are not scale-free (far from unit scale it can stop far from
    the maximum) and it crawls where the evidence is flat, so a global 1-D search
    over ``log(alpha / beta)`` of the evidence maximised over ``beta`` (a grid that
    follows the spectrum of ``F^T F``, then zoomed) checks every target, and the
    higher of the two evidences is kept: the value is then invariant to
    ``F -> cF`` over the float64 range. The score is the mean over target columns
    of ``L / N``. Higher is better.

    Unlike the reference code, the result is exact when ``N < D``: the
    eigendecomposition is of ``F^T F`` (D x D) when ``D <= N`` and of ``F F^T``
    (N x N) otherwise, the ``D - N`` missing eigenvalues are zero, and the
    residual counts the part of ``y`` outside the column space of ``F`` in full.
    The decomposition is computed once for all targets. As in the paper the
    features are used as given (no centring, no intercept).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target-task features from the candidate model.
    labels : array-like of shape (n_samples,) or (n_samples, n_targets)
        Class labels (integers or strings, at least 2 classes); or, with
        ``regression=True``, real-valued targets (a multi-label 0/1 matrix too).
    regression : bool, default=False
        Treat ``labels`` as real-valued targets instead of classes.
    max_iter : int, default=100
        Maximum fixed-point iterations per target.
    tol : float, default=1e-6
        Relative tolerance on ``alpha`` and ``beta``.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weights: sample ``i``'s likelihood counts ``w_i`` times and
        ``N = sum w`` (integer weights give the value of the data with row ``i``
        repeated ``w_i`` times). The ranker's Bayesian bootstrap passes positive
        weights summing to ``N``; the cost is that of the rows with ``w > 0``.

    Returns
    -------
    float
        The LogME score, the mean of ``L / N`` over target columns.

    Raises
    ------
    ValueError
        On invalid input (see :func:`~transferlab.scores._validation.check_features_labels`).

    References
    ----------
    K. You, Y. Liu, J. Wang, M. Long. LogME: Practical Assessment of Pre-trained
    Models for Transfer Learning. ICML 2021.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> good = labels[:, None] + 0.1 * rng.normal(size=(40, 3))
    >>> bad = rng.normal(size=(40, 3))
    >>> bool(logme(good, labels) > logme(bad, labels))
    True
    """
    max_iter, tol = _check_iteration(max_iter, tol)
    if regression:
        F = check_features(features)
        Y = check_targets(labels, F.shape[0])
        zero = np.flatnonzero(~Y.any(axis=0))
        if zero.size:
            raise ValueError(
                f"labels (regression targets) column {int(zero[0])} is all zeros; its evidence is "
                "unbounded (a noise-free fit). Drop constant-zero targets"
            )
    else:
        F, y, classes = check_features_labels(features, labels, min_per_class=1)
        Y = np.zeros((y.shape[0], classes.shape[0]))
        Y[np.arange(y.shape[0]), y] = 1.0
    weights = None if sample_weight is None else check_sample_weight(sample_weight, F.shape[0])
    fit = _logme_fit(F, Y, max_iter=max_iter, tol=tol, weights=weights)
    return float(np.mean(fit.evidence) / (F.shape[0] if weights is None else np.sum(weights)))
