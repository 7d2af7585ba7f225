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

from transferlab._linalg import gram
from transferlab._validation import check_features, check_features_labels, check_int, check_scalar, check_targets
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
        Whether the target was finished by the profile search of :func:`_polish`
        (the fixed point had not converged).
    """

    evidence: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    polished: np.ndarray


def _spectrum(F: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero spectrum of ``F^T F`` and the targets in the matching coordinates.

    With the thin SVD ``F = U diag(sqrt(s)) V^T`` restricted to the ``r`` non-zero
    eigenvalues ``s`` of ``F^T F``, returns ``s`` (r,), ``Z = (U^T Y)^T`` (K, r) and
    the squared norm of the part of each column of ``Y`` orthogonal to the column
    space of ``F`` (K,), exactly 0 when ``r = N``. ``U`` comes from the eigendecomposition of ``F^T F``
    (D x D) when ``D <= N`` and of ``F F^T`` (N x N) otherwise; it is computed
    once and shared by all targets.
    """
    n, d = F.shape
    if d <= n:
        s, V = np.linalg.eigh(gram(F.T))
    else:
        s, U = np.linalg.eigh(gram(F))
    keep = s > max(s[-1], 0.0) * max(n, d) * np.finfo(np.float64).eps
    s = s[keep]
    if d <= n:
        U = (F @ V[:, keep]) / np.sqrt(s)
    else:
        U = U[:, keep]
    Z = U.T @ Y
    if s.shape[0] == n:  # the columns of F span R^N: nothing of Y lies outside
        perp = np.zeros(Y.shape[1])
    else:
        perp = np.sum((Y - U @ Z) ** 2, axis=0)
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


def _logme_fit(F: np.ndarray, Y: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> _LogMEFit:
    """Maximise the evidence of every column of ``Y`` (clean float64 input).

    All targets iterate together (vectorised over columns); a target stops when
    the relative change of both ``alpha`` and ``beta`` is at most ``tol``. The
    supremum of the evidence can lie on a boundary, where the fixed point drifts
    off slowly: ``alpha -> inf`` when the features explain nothing of a target
    (``gamma -> 0``), and ``beta -> inf`` (no noise) when ``N <= D`` and the
    target is interpolated. So ``alpha`` (``beta``) also counts as converged once
    the evidence is within ``tol * N`` of its limit at ``alpha = inf``
    (``beta = inf``).

    Parameters
    ----------
    F : ndarray of shape (n_samples, n_features), float64
    Y : ndarray of shape (n_samples, n_targets), float64
    max_iter : int
    tol : float

    Returns
    -------
    _LogMEFit
    """
    n = F.shape[0]
    s, Z, perp = _spectrum(F, Y)
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
            if s.shape[0] == n:
                beta_done |= _beta_gap(new_alpha, new_beta, s, z2[act]) <= tol * n
            alpha[act], beta[act] = new_alpha, new_beta
            n_iter[act] += 1
            converged[act] = alpha_done & beta_done
    polished = ~converged
    for j in np.flatnonzero(polished):
        alpha[j], beta[j] = _polish(s, z2[j], perp[j], n, alpha[j], beta[j])
    evidence = _evidence(alpha, beta, s, z2, perp, n)
    return _LogMEFit(
        evidence=evidence,
        alpha=alpha,
        beta=beta,
        n_iter=n_iter,
        converged=converged,
        polished=polished,
    )


def _profile(log_lam: np.ndarray, s: np.ndarray, z2: np.ndarray, perp: float, n: int) -> np.ndarray:
    """Evidence maximised over ``beta`` at fixed ``lambda = alpha / beta`` (G,).

    With ``lambda`` fixed the covariance is ``beta^-1 M(lambda)``; the best
    ``beta`` is ``N / Q`` with ``Q = perp + sum z_i^2 / (1 + s_i / lambda)``, so
    ``L*(lambda) = -N/2 log 2 pi - 1/2 sum log(1 + s_i/lambda) + N/2 log(N/Q) - N/2``.
    """
    ratio = s / np.exp(log_lam)[:, None]
    q_total = perp + np.sum(z2 / (1.0 + ratio), axis=1)
    return (
        -0.5 * n * _LOG_2PI
        - 0.5 * np.sum(np.log1p(ratio), axis=1)
        + 0.5 * n * np.log(n / q_total)
        - 0.5 * n
    )


def _polish(s, z2, perp, n, alpha0, beta0, *, n_grid: int = 161) -> tuple[float, float]:
    """Finish one target whose fixed point has not converged; returns ``(alpha, beta)``.

    The fixed point can crawl for thousands of iterations when the evidence is
    flat, typically when its supremum lies at ``alpha = inf`` or ``beta = inf``.
    The profile :func:`_profile` over ``t = log(alpha / beta)`` has the same
    maximum. A grid of ``t`` from ``log(s_min) - 20`` to ``log(s_max) + 20``
    (beyond which the profile equals its limits to about ``e^-20``) locates it,
    a bounded Brent search between the grid neighbours refines it, and the best
    of the grid point, the refinement and the fixed point's iterate is kept.
    """
    if s.size == 0:  # F = 0: the fixed point reaches alpha = inf at once
        return alpha0, beta0
    grid = np.linspace(np.log(s[0]) - 20.0, np.log(s[-1]) + 20.0, n_grid)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        values = _profile(grid, s, z2, perp, n)
    i = int(np.nanargmax(values))
    from scipy.optimize import minimize_scalar  # deferred: scipy.optimize takes ~0.1 s to import

    res = minimize_scalar(
        lambda t: -_profile(np.array([t]), s, z2, perp, n)[0],
        bounds=(grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]),
        method="bounded",
        options={"xatol": 1e-10},
    )
    log_lam, best = (float(res.x), -float(res.fun)) if -res.fun >= values[i] else (grid[i], values[i])
    start = _evidence(np.array([alpha0]), np.array([beta0]), s, z2[None], np.array([perp]), n)[0]
    if np.isfinite(start) and start > best:
        return alpha0, beta0
    lam = np.exp(log_lam)
    beta = n / (perp + np.sum(z2 / (1.0 + s / lam)))
    return float(lam * beta), float(beta)


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
def logme(features, labels, *, regression: bool = False, max_iter: int = 100, tol: float = 1e-6) -> float:
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
    evidence is within ``tol`` per sample of that limit). Where the fixed point
    crawls (flat evidence) and has not converged after ``max_iter`` iterations,
    a 1-D search over ``log(alpha / beta)`` of the evidence maximised over
    ``beta`` finishes it. The score is the mean over target columns of ``L / N``.
    Higher is better.

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
    fit = _logme_fit(F, Y, max_iter=max_iter, tol=tol)
    return float(np.mean(fit.evidence) / F.shape[0])
