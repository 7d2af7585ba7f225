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

from transferlab._linalg import binary_exponent, gram, weighted_gram
from transferlab._validation import (
    check_features,
    check_features_labels,
    check_int,
    check_multilabel,
    check_sample_weight,
    check_scalar,
    check_targets,
)
from transferlab.scores._registry import register_score

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class _LogMEFit:
    """Per-target results of the evidence maximisation.

    The arrays have shape ``(n_targets,)`` for one weighting (or none) and
    ``(n_weightings, n_targets)`` for a stack of weightings.

    Attributes
    ----------
    evidence : ndarray
        The maximised log evidence ``L(alpha, beta)`` of each target column (not
        divided by ``n_samples``).
    alpha, beta : ndarray
        The prior precision and the noise precision at the fixed point.
    n_iter : ndarray, int
        Fixed-point iterations used per target.
    converged : ndarray, bool
        Whether the fixed-point iteration met its stopping rule within
        ``max_iter`` (see :func:`_logme_fit`).
    polished : ndarray, bool
        Whether the profile search of :func:`_profile_max` found a higher evidence
        than the fixed point's iterate (which it then replaced).
    """

    evidence: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    polished: np.ndarray


@dataclass(frozen=True)
class _Spectra:
    """The spectra of ``B`` weightings of the same data (:func:`_spectra`), padded to one length.

    Attributes
    ----------
    s : ndarray of shape (B, r)
        Row ``b``: the non-zero eigenvalues (ascending, all positive) of weighting
        ``b``'s ``F^T W F``, then exact zeros up to the longest row. A zero entry
        contributes nothing to any sum below (its ``z^2`` is zero too).
    z2 : ndarray of shape (B, K, r)
        The squared target coordinates ``z_i^2`` (zero on the padding).
    perp : ndarray of shape (B, K)
        The squared norm of each target outside the column space.
    n : ndarray of shape (B,)
        The effective sample count ``sum w`` (the number of rows unweighted).
    interpolated : ndarray of shape (B,), bool
        Whether the features span every kept row (``perp = 0``; ``beta -> inf`` may be the supremum).
    exponent : ndarray of shape (B,), int
        The power of two the features were divided by (see :func:`_spectra`).
    """

    s: np.ndarray
    z2: np.ndarray
    perp: np.ndarray
    n: np.ndarray
    interpolated: np.ndarray
    exponent: np.ndarray


def _spectrum(
    F: np.ndarray, Y: np.ndarray, weights: np.ndarray | None = None, *, rows_gram: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero spectrum of ``F^T F`` and the targets in the matching coordinates.

    With the thin SVD ``F = U diag(sqrt(s)) V^T`` restricted to the ``r`` non-zero
    eigenvalues ``s`` of ``F^T F``, returns ``s`` (r,), ``Z = (U^T Y)^T`` (K, r) and
    the squared norm of the part of each column of ``Y`` orthogonal to the column
    space of ``F`` (K,), exactly 0 when ``r = N``. When ``D <= N`` the
    eigendecomposition is of ``F^T F`` (D x D) and ``U`` is never formed:
    ``U^T Y = diag(s)^-1/2 V^T (F^T Y)`` and the residual is ``Y - F B`` with the
    least-squares coefficients ``B = V diag(s)^-1 V^T F^T Y``, both O(N D K).
    Otherwise it is of ``F F^T`` (N x N; ``rows_gram`` when the caller already
    has it, shared by several weightings). Computed once for all targets. With
    positive ``weights`` it is the spectrum of ``sqrt(w) F`` with targets
    ``sqrt(w) Y``: ``F^T W F`` by :func:`~transferlab._linalg.weighted_gram`, or
    ``diag(sqrt(w)) F F^T diag(sqrt(w))``.
    """
    n, d = F.shape
    if d > n:
        G = gram(F) if rows_gram is None else rows_gram
        if weights is not None:  # the rows scaled by sqrt(w): (sqrt(w) F)(sqrt(w) F)^T
            root = np.sqrt(weights)
            G = G * root[:, None] * root
            Y = Y * root[:, None]
        s, U = np.linalg.eigh(G)
    else:
        s, V = np.linalg.eigh(gram(F.T) if weights is None else weighted_gram(F, weights))
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
    elif weights is None or d > n:  # (for D > N, Y is already scaled by sqrt(w))
        perp = np.sum((Y - fitted) ** 2, axis=0)
    else:
        perp = weights @ (Y - fitted) ** 2
    return s, Z.T.copy(), perp


def _spectra(F: np.ndarray, Y: np.ndarray, weights: np.ndarray | None = None) -> _Spectra:
    """The spectrum of each weighting (:func:`_spectrum`), padded into one :class:`_Spectra`.

    ``weights`` is ``None`` (one unweighted fit) or ``(B, N)`` clean non-negative
    rows. Rows of weight 0 are dropped first, so the cost is that of the rows with
    ``w > 0``. The evidence maximum is invariant to ``F -> cF`` (alpha absorbs
    ``c^2``); dividing by a power of two (exact in float64) to ``max|F|`` in
    ``[0.5, 1)`` over the kept rows keeps the products clear of overflow and
    underflow over the whole float64 range. The weightings that keep every row
    share the scaled copy of ``F`` and, when ``D > N``, its Gram matrix ``F F^T``,
    so each then costs one ``N x N`` eigendecomposition; with ``D <= N`` each costs
    ``F^T W F`` (``O(N D^2)``) and a ``D x D`` one.

    Raises
    ------
    ValueError
        When a weighting's weights sum to more than its number of kept rows that
        the features interpolate: the weighted evidence is then unbounded.
    """
    k = Y.shape[1]
    rows = [None] if weights is None else list(weights)
    row_max = np.max(np.abs(F), axis=1)
    per_weighting = F.shape[0] * min(F.shape)
    if weights is not None and per_weighting <= _STACKED_ELEMENTS:
        # Small targets: batched decompositions (the per-weighting Python overhead would dominate),
        # in stacks that bound the memory; every weighting of this size goes this way, so a
        # weighting gets the same value alone or in a stack.
        exponent = binary_exponent(row_max)
        Fs = np.ldexp(F, -exponent)
        step = max(1, _BATCH_ELEMENTS // per_weighting)
        return _concat_spectra([_stack_spectra(Fs, Y, weights[i:i + step], exponent, first=i)
                                for i in range(0, weights.shape[0], step)])
    shared: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}  # exponent -> (scaled F, F F^T or None)
    parts = []
    for b, w in enumerate(rows):
        keep = None if w is None else w > 0
        full = keep is None or bool(keep.all())
        kept = F.shape[0] if full else int(np.count_nonzero(keep))
        n = float(F.shape[0] if w is None else np.sum(w))
        exponent = binary_exponent(row_max if full else row_max[keep])
        # The D x D path reads the rows only through weighted sums, where rows of weight 0 add
        # nothing (weighted_gram drops them): it can take the shared scaled copy of every row.
        if (full or F.shape[1] <= kept) and exponent in shared:
            Fs, G = shared[exponent]
        elif full or F.shape[1] <= kept:
            Fs = np.ldexp(F, -exponent)
            G = gram(Fs) if Fs.shape[1] > Fs.shape[0] else None
            shared[exponent] = (Fs, G)
        else:
            Fs, G = np.ldexp(F[keep], -exponent), None
        if Fs.shape[0] == F.shape[0]:  # every row (those of weight 0 add nothing)
            s, Z, perp = _spectrum(Fs, Y, w, rows_gram=G)
        else:
            s, Z, perp = _spectrum(Fs, Y[keep], w[keep])
        interpolated = s.shape[0] == kept  # perp = 0: beta -> inf may be the supremum
        if interpolated and n <= kept * (1 + 1e-9):
            n = float(kept)  # weights that sum to the number of rows up to rounding
        if interpolated and n > kept:
            raise ValueError(_unbounded_message(n, kept, None if weights is None or len(rows) == 1 else b))
        parts.append((s, Z**2, perp, n, interpolated, exponent))
    r = max(p[0].shape[0] for p in parts)
    s_pad = np.zeros((len(parts), r))
    z2_pad = np.zeros((len(parts), k, r))
    for b, (s, z2, *_rest) in enumerate(parts):
        s_pad[b, : s.shape[0]] = s
        z2_pad[b, :, : s.shape[0]] = z2
    return _Spectra(
        s=s_pad,
        z2=z2_pad,
        perp=np.array([p[2] for p in parts]).reshape(len(parts), k),
        n=np.array([p[3] for p in parts], dtype=np.float64),
        interpolated=np.array([p[4] for p in parts], dtype=bool),
        exponent=np.array([p[5] for p in parts], dtype=np.int64),
    )


#: Largest ``N * min(N, D)`` for which :func:`_spectra` decomposes weightings in batches.
_STACKED_ELEMENTS = 1 << 16
#: The most ``B * N * min(N, D)`` entries of one batch (32 MiB of float64 per temporary).
_BATCH_ELEMENTS = 1 << 22


def _stack_spectra(Fs: np.ndarray, Y: np.ndarray, weights: np.ndarray, exponent: int, *, first: int = 0) -> _Spectra:
    """:func:`_spectra` of ``B`` weightings at once, with batched products and eigendecompositions.

    The same decomposition as :func:`_spectrum` for each weighting (``F^T W F``
    when ``D <= N``, ``diag(sqrt(w)) F F^T diag(sqrt(w))`` otherwise), on the
    whole ``(B, ., .)`` stack; each weighting's eigenvalues below the same
    relative threshold are dropped and the kept ones moved to the front
    (ascending) with zero padding after, as :class:`_Spectra` lays them out.
    ``Fs`` (every row) is already scaled by ``2^-exponent``; a row of weight 0
    adds exactly nothing (its products are zero; with ``D > N`` its row and column
    of the Gram matrix are zero, an eigenvalue dropped), and the rank is compared
    with each weighting's count of kept rows. ``first`` numbers the weightings in
    an error message.
    """
    n, d = Fs.shape
    kept = np.count_nonzero(weights > 0, axis=1)
    if d <= n:
        weighted = Fs.T[None, :, :] * weights[:, None, :]  # (B, D, N)
        s, V = np.linalg.eigh(weighted @ Fs)
        projected = np.swapaxes(V, 1, 2) @ (weighted @ Y)  # V^T F^T W Y: (B, D, K)
    else:
        root = np.sqrt(weights)
        Yw = Y[None, :, :] * root[:, :, None]  # (B, N, K)
        s, U = np.linalg.eigh(gram(Fs)[None, :, :] * root[:, :, None] * root[:, None, :])
        projected = np.swapaxes(U, 1, 2) @ Yw  # U^T sqrt(W) Y: (B, N, K)
    keep = s > np.maximum(s[:, -1:], 0.0) * max(n, d) * np.finfo(np.float64).eps
    root_s = np.sqrt(np.where(keep, s, 1.0))
    if d <= n:
        Z = np.where(keep[:, :, None], projected / root_s[:, :, None], 0.0)
        fitted = Fs @ (V @ (Z / root_s[:, :, None]))  # (B, N, K)
        residual = weights[:, :, None] * (Y[None, :, :] - fitted) ** 2
    else:
        Z = np.where(keep[:, :, None], projected, 0.0)
        residual = (Yw - U @ Z) ** 2
    rank = np.count_nonzero(keep, axis=1)
    interpolated = rank == kept  # perp = 0: beta -> inf may be the supremum
    perp = np.where(interpolated[:, None], 0.0, np.sum(residual, axis=1))  # (B, K)
    order = np.argsort(~keep, axis=1, kind="stable")[:, : max(int(rank.max()), 1)]  # kept first, ascending
    s_kept = np.take_along_axis(np.where(keep, s, 0.0), order, axis=1)
    z2 = np.swapaxes(np.take_along_axis(Z**2, order[:, :, None], axis=1), 1, 2)  # (B, K, r)
    total = np.sum(weights, axis=1)
    total = np.where(interpolated & (total <= kept * (1 + 1e-9)), kept, total)
    bad = np.flatnonzero(interpolated & (total > kept))
    if bad.size:
        b = int(bad[0])
        raise ValueError(_unbounded_message(total[b], int(kept[b]), first + b if first + weights.shape[0] > 1 else None))
    return _Spectra(s=s_kept, z2=z2, perp=perp, n=total.astype(np.float64), interpolated=interpolated,
                    exponent=np.full(weights.shape[0], exponent, dtype=np.int64))


def _concat_spectra(parts: list[_Spectra]) -> _Spectra:
    """One :class:`_Spectra` of several, padded with zeros to the longest spectrum."""
    if len(parts) == 1:
        return parts[0]
    r = max(p.s.shape[1] for p in parts)
    pad = [((0, 0), (0, r - p.s.shape[1])) for p in parts]
    return _Spectra(
        s=np.concatenate([np.pad(p.s, w) for p, w in zip(parts, pad)]),
        z2=np.concatenate([np.pad(p.z2, ((0, 0), *w)) for p, w in zip(parts, pad)]),
        perp=np.concatenate([p.perp for p in parts]),
        n=np.concatenate([p.n for p in parts]),
        interpolated=np.concatenate([p.interpolated for p in parts]),
        exponent=np.concatenate([p.exponent for p in parts]),
    )


def _unbounded_message(total: float, rows: int, which: int | None) -> str:
    where = "" if which is None else f" (weighting {which})"
    return (
        f"sample weights{where} sum to {total:g} over {rows} rows that the features interpolate: "
        "the weighted evidence is unbounded (repeated rows fitted without noise). Use positive "
        "weights that sum to the number of rows (a Bayesian bootstrap), or more samples than features"
    )


def _ratio(alpha: np.ndarray, beta: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``q = beta s / alpha`` (K, r); ``alpha = inf`` (the prior switched off) gives 0.

    ``s`` is one spectrum (r,) shared by the targets, or one per target (K, r).
    """
    return beta[:, None] * s / alpha[:, None]


def _masked_divide(num: np.ndarray, den: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``num / den`` where ``valid`` (an eigenvalue, not padding), else 0."""
    return np.divide(num, den, out=np.zeros(np.broadcast_shapes(np.shape(num), np.shape(den))), where=valid)


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
    as ``beta -> inf``. ``s`` is one spectrum (r,) or one per target (K, r)
    padded with zeros (``r`` is then each row's count of positive entries);
    ``n`` a number or one per target (K,).
    """
    s = np.broadcast_to(s, z2.shape)
    valid = s > 0
    c = 1.0 / beta[:, None] + s / alpha[:, None]
    terms = np.where(valid, np.log(c) + z2 / c, 0.0)
    out = -0.5 * n * _LOG_2PI - 0.5 * np.sum(terms, axis=1) - 0.5 * beta * perp
    outside = n - np.count_nonzero(valid, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return out + np.where(outside > 0, 0.5 * outside * np.log(beta), 0.0)


def _alpha_gap(alpha, beta, s, z2):
    """Upper bound on ``|L(alpha, beta) - L(inf, beta)|`` (K,), free of cancellation."""
    q = _ratio(alpha, beta, s)
    return 0.5 * np.sum(np.log1p(q), axis=1) + 0.5 * beta * np.sum(z2 * q / (1.0 + q), axis=1)


def _beta_gap(alpha, beta, s, z2):
    """Upper bound on ``|L(alpha, beta) - L(alpha, inf)|`` (K,) when ``r = N`` (perp = 0)."""
    q = _ratio(alpha, beta, s)
    valid = np.broadcast_to(s > 0, q.shape)
    return 0.5 * np.sum(np.log1p(_masked_divide(1.0, q, valid)), axis=1) + 0.5 * np.sum(
        z2 * _masked_divide(alpha[:, None], s, valid) / (1.0 + q), axis=1
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
    with row ``i`` repeated ``w_i`` times). A stack of ``B`` weightings ``(B, N)``
    is fitted in one pass: each weighting has its own spectrum (:func:`_spectra`),
    and the fixed point and the profile search run over all ``B * K`` targets at
    once, each against its own spectrum; target ``(b, k)`` gets the value that
    weighting ``b`` alone gives (up to rounding).

    Parameters
    ----------
    F : ndarray of shape (n_samples, n_features), float64
    Y : ndarray of shape (n_samples, n_targets), float64
    max_iter : int
    tol : float
    weights : ndarray of shape (n_samples,) or (n_weightings, n_samples), optional

    Returns
    -------
    _LogMEFit
        Arrays of shape (n_targets,), or (n_weightings, n_targets) for 2-D weights.
    """
    stacked = weights is not None and weights.ndim == 2
    spectra = _spectra(F, Y, None if weights is None else (weights if stacked else weights[None, :]))
    fit = _maximise(spectra, max_iter=max_iter, tol=tol)
    shape = (spectra.s.shape[0], Y.shape[1]) if stacked else (Y.shape[1],)
    return _LogMEFit(**{name: getattr(fit, name).reshape(shape) for name in _LogMEFit.__dataclass_fields__})


def _maximise(spectra: _Spectra, *, max_iter: int, tol: float) -> _LogMEFit:
    """The fixed point, then the profile search, over every target of every weighting; (B * K,) arrays."""
    b_count, k, r = spectra.z2.shape
    s = np.repeat(spectra.s, k, axis=0)  # (T, r): each target against its weighting's spectrum
    z2 = spectra.z2.reshape(b_count * k, r)
    perp = spectra.perp.reshape(-1)
    n = np.repeat(spectra.n, k)
    interpolated = np.repeat(spectra.interpolated, k)
    t = b_count * k
    alpha = np.ones(t)
    beta = np.ones(t)
    n_iter = np.zeros(t, dtype=np.int64)
    converged = np.zeros(t, dtype=bool)
    stopped = np.zeros(t, dtype=bool)  # beta left the representable range
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for _ in range(max_iter):
            act = np.flatnonzero(~converged & ~stopped)
            if act.size == 0:
                break
            sa, z2a = s[act], z2[act]
            q = _ratio(alpha[act], beta[act], sa)
            gamma = np.sum(q / (1.0 + q), axis=1)
            m2 = np.sum(_masked_divide(z2a * q**2, sa * (1.0 + q) ** 2, sa > 0), axis=1)
            res = perp[act] + np.sum(z2a / (1.0 + q) ** 2, axis=1)
            # gamma = m2 = 0 (alpha already infinite, or y orthogonal to the features) keeps alpha = inf
            new_alpha = np.where(m2 > 0, gamma / m2, np.inf)
            new_beta = (n[act] - gamma) / res
            ok = np.isfinite(new_beta) & (new_beta > 0) & (new_alpha > 0)
            stopped[act[~ok]] = True
            act, new_alpha, new_beta, sa, z2a = act[ok], new_alpha[ok], new_beta[ok], sa[ok], z2a[ok]
            na = n[act]
            beta_done = _relatively_close(new_beta, beta[act], tol)
            alpha_done = _relatively_close(new_alpha, alpha[act], tol) | (
                _alpha_gap(new_alpha, new_beta, sa, z2a) <= tol * na
            )
            inter = interpolated[act]
            if inter.any():
                beta_done |= inter & (_beta_gap(new_alpha, new_beta, sa, z2a) <= tol * na)
            alpha[act], beta[act] = new_alpha, new_beta
            n_iter[act] += 1
            converged[act] = alpha_done & beta_done
    evidence = _evidence(alpha, beta, s, z2, perp, n)
    # The fixed point's stopping rule is not scale-free: from alpha = beta = 1 it can stop
    # far from the maximum when F is far from unit scale, or crawl on a flat evidence.
    # The profile search is scale-covariant (its grid follows the spectrum), so keeping
    # the better of the two makes the value invariant to F -> cF.
    log_lam, best = _profile_max(spectra, evidence.reshape(b_count, k))
    polished = np.isfinite(best) & ~(best <= evidence + 1e-10 * np.maximum(1.0, np.abs(best)))
    lam = np.exp(log_lam[polished])
    beta[polished] = n[polished] / (
        perp[polished] + np.sum(z2[polished] / (1.0 + s[polished] / lam[:, None]), axis=1)
    )
    alpha[polished] = lam * beta[polished]
    evidence[polished] = best[polished]
    with np.errstate(over="ignore"):  # alpha of features near 1e300 is beyond float64: inf
        alpha = np.ldexp(alpha, 2 * np.repeat(spectra.exponent, k))
    return _LogMEFit(
        evidence=evidence,
        alpha=alpha,
        beta=beta,
        n_iter=n_iter,
        converged=converged,
        polished=polished,
    )


def _profile_grid(grid: np.ndarray, s: np.ndarray, z2: np.ndarray, perp: np.ndarray, n: np.ndarray) -> np.ndarray:
    """:func:`_profile` on one grid per weighting, shared by its targets: (B, K, G).

    ``grid`` (B, G), ``s`` (B, r), ``z2`` (B, K, r), ``perp`` (B, K), ``n`` (B,): the
    log det term is computed once per weighting.
    """
    ratio = s[:, None, :] / np.exp(grid)[:, :, None]  # (B, G, r)
    log_det = np.sum(np.log1p(ratio), axis=2)[:, None, :]
    q_total = perp[:, :, None] + np.matmul(z2, np.swapaxes(1.0 / (1.0 + ratio), 1, 2))
    nn = n[:, None, None]
    return -0.5 * nn * _LOG_2PI - 0.5 * log_det + 0.5 * nn * np.log(nn / q_total) - 0.5 * nn


def _profile(log_lam: np.ndarray, s: np.ndarray, z2: np.ndarray, perp: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Evidence maximised over ``beta`` at fixed ``lambda = alpha / beta`` (T, G).

    ``log_lam`` is (T, G), a grid per target; ``s`` (T, r) each target's spectrum
    (zero-padded: a zero adds nothing), ``z2`` (T, r), ``perp`` and ``n`` (T,).
    With ``lambda`` fixed the covariance is ``beta^-1 M(lambda)``; the best
    ``beta`` is ``N / Q`` with ``Q = perp + sum z_i^2 / (1 + s_i / lambda)``, so
    ``L*(lambda) = -N/2 log 2 pi - 1/2 sum log(1 + s_i/lambda) + N/2 log(N/Q) - N/2``.
    """
    ratio = s[:, None, :] / np.exp(log_lam)[:, :, None]  # (T, G, r)
    log_det = np.sum(np.log1p(ratio), axis=2)
    q_total = perp[:, None] + np.einsum("kr,kgr->kg", z2, 1.0 / (1.0 + ratio))
    nn = n[:, None]
    return -0.5 * nn * _LOG_2PI - 0.5 * log_det + 0.5 * nn * np.log(nn / q_total) - 0.5 * nn


def _profile_max(spectra: _Spectra, floor=None, *, n_grid: int = 161, n_zoom: int = 9, width: float = 1e-7):
    """Global maximum of :func:`_profile` over ``t = log(alpha / beta)``, per target.

    Per weighting, a grid of ``t`` from ``log(s_min) - 20`` to ``log(s_max) + 20``
    (beyond which the profile equals its limits at ``alpha = inf`` or ``beta = inf``
    to about ``e^-20``) locates the maximum of each of its targets; then each
    target's bracket (the best grid point's two neighbours) is zoomed on with
    ``n_zoom`` points a round until it is narrower than ``width``. Every step is
    relative to the spectrum, so scaling ``F`` by ``c`` shifts the search by
    ``2 log c`` and finds the same maximum. Vectorised over weightings and
    targets, in blocks that bound the memory; returns ``(log_lambda, value)``,
    each (B * K,), value ``-inf`` for a weighting whose features are all zero.
    A target whose best grid value does not exceed ``floor`` (B, K) (the evidence
    the fixed point already reached) is not zoomed on: the grid found nothing better.
    """
    b_count, k, r = spectra.z2.shape
    rank = np.count_nonzero(spectra.s, axis=1)
    best_t = np.full((b_count, k), np.nan)
    best = np.full((b_count, k), -np.inf)
    lo = np.zeros((b_count, k))
    hi = np.zeros((b_count, k))
    groups = np.flatnonzero(rank > 0)
    block = max(1, 2_000_000 // (n_grid * max(r, 1)))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for i in range(0, groups.size, block):
            g = groups[i : i + block]
            grid = np.linspace(np.log(spectra.s[g, 0]) - 20.0, np.log(spectra.s[g, rank[g] - 1]) + 20.0, n_grid,
                               axis=1)  # (b, G)
            values = np.nan_to_num(
                _profile_grid(grid, spectra.s[g], spectra.z2[g], spectra.perp[g], spectra.n[g]), nan=-np.inf
            )
            j = np.argmax(values, axis=2)  # (b, K)
            best_t[g] = np.take_along_axis(grid, j, axis=1)
            best[g] = np.take_along_axis(values, j[:, :, None], axis=2)[:, :, 0]
            lo[g] = np.take_along_axis(grid, np.maximum(j - 1, 0), axis=1)
            hi[g] = np.take_along_axis(grid, np.minimum(j + 1, n_grid - 1), axis=1)
        best_t, best, lo, hi = best_t.reshape(-1), best.reshape(-1), lo.reshape(-1), hi.reshape(-1)
        zoom = np.repeat(rank > 0, k)
        if floor is not None:
            zoom &= ~(best <= floor.reshape(-1))
        active = np.flatnonzero(zoom)
        z2 = spectra.z2.reshape(b_count * k, r)
        perp = spectra.perp.reshape(-1)
        steps = np.linspace(0.0, 1.0, n_zoom)
        block = max(1, 2_000_000 // (n_zoom * max(r, 1)))
        for i in range(0, active.size, block):
            a = active[i : i + block]
            group = a // k
            sa, z2a, perpa, na = spectra.s[group], z2[a], perp[a], spectra.n[group]
            la, ha, at, ab = lo[a], hi[a], best_t[a], best[a]
            while np.max(ha - la) > width:
                ts = la[:, None] + (ha - la)[:, None] * steps  # (b, n_zoom)
                vals = np.nan_to_num(_profile(ts, sa, z2a, perpa, na), nan=-np.inf)
                j = np.argmax(vals, axis=1)
                rows = np.arange(j.size)
                better = vals[rows, j] > ab
                at = np.where(better, ts[rows, j], at)
                ab = np.where(better, vals[rows, j], ab)
                la, ha = ts[rows, np.maximum(j - 1, 0)], ts[rows, np.minimum(j + 1, n_zoom - 1)]
            best_t[a], best[a] = at, ab
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
    # Regression: the real-valued targets; multi-label: the 0/1 matrix fed as regression
    # targets, the mean over labels of each label's LogME (the authors' recommendation).
    targets=frozenset({"classes", "regression", "multilabel"}),
)
def logme(
    features, labels, *, regression: bool = False, max_iter: int = 100, tol: float = 1e-6, sample_weight=None,
    target_kind: str = "classes",
) -> float | np.ndarray:
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
    target_kind : {"classes", "regression", "multilabel"}, default="classes"
        The kind of ``labels``: ``"regression"`` is ``regression=True``;
        ``"multilabel"`` takes a 0/1 matrix (n_samples, n_labels) and, as the
        LogME authors recommend for multi-label data (thuml/LogME issue 9),
        treats each label's 0/1 column as a regression target, so the score is
        the mean over labels of each label's LogME. A label no sample has (an
        all-zero column) is refused.
    sample_weight : array-like of shape (n_samples,) or (n_weightings, n_samples), optional
        Non-negative weights: sample ``i``'s likelihood counts ``w_i`` times and
        ``N = sum w`` (integer weights give the value of the data with row ``i``
        repeated ``w_i`` times). The ranker's Bayesian bootstrap passes positive
        weights summing to ``N``; the cost is that of the rows with ``w > 0``.
        A 2-D stack gives one score per row, each the value of that row alone,
        computed in one pass (the features are validated and scaled once; each
        weighting has its own spectrum, and the fixed point and the profile
        search run over all weightings and targets at once).

    Returns
    -------
    float, or ndarray of shape (n_weightings,) for 2-D ``sample_weight``
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
    if target_kind not in ("classes", "regression", "multilabel"):
        raise ValueError(f"target_kind must be 'classes', 'regression' or 'multilabel'; got {target_kind!r}")
    if regression or target_kind != "classes":
        F = check_features(features)
        Y = (check_multilabel if target_kind == "multilabel" else check_targets)(labels, F.shape[0])
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
    weights = None if sample_weight is None else check_sample_weight(sample_weight, F.shape[0], batched=True)
    fit = _logme_fit(F, Y, max_iter=max_iter, tol=tol, weights=weights)
    if weights is not None and weights.ndim == 2:  # one value per weighting
        return np.mean(fit.evidence, axis=1) / np.sum(weights, axis=1)
    return float(np.mean(fit.evidence) / (F.shape[0] if weights is None else np.sum(weights)))
