"""The transfer bound: the target loss of a linear head bounded from the source task.

Mehra, Zhang & Hamm, "Analysis of Task Transferability in Large Pre-trained
Classifiers" (arXiv:2307.00823, 2023). A source task (features ``z`` of a fixed
extractor, labels ``s``, a linear softmax head ``W, c``) is transformed towards a
target task by

- a class prior ``D`` on the source classes (re-weighting the source samples),
- a column-stochastic label map ``B`` (``B[t, s] = P(Y_T = t | Y_S = s)``),
- an invertible affine feature map ``z' = A z + b``.

The transformed source classifier on target features is

.. math::

    h_T(z') = B\\,\\mathrm{softmax}\\big(W A^{-1}(z' - b) + c\\big)

and, for the cross-entropy :math:`\\ell(z', t) = -\\log h_T(z')_t`,

.. math::

    \\mathbb{E}_{T}[\\ell] \\;\\le\\;
    \\underbrace{\\textstyle\\sum_s D_s\\, \\mathbb{E}[-\\log p_s(z) \\mid s]}_{\\text{re-weighted source loss}}
    + \\underbrace{H_{B,D}(Y_T \\mid Y_S)}_{\\text{conditional entropy}}
    + \\underbrace{W_c(P_{S'}, P_T)}_{\\text{Wasserstein term}}.

The first two terms bound the loss on the transformed source exactly
(:math:`-\\log \\sum_{s'} B_{ts'} p_{s'} \\le -\\log B_{ts} - \\log p_s`); the
third moves it to the target by Kantorovich duality with a ground cost that
dominates the change of the loss between any two (feature, label) points:

.. math::

    c\\big((z_1, t_1), (z_2, t_2)\\big) = L\\,\\lVert z_1 - z_2\\rVert_2 + \\lambda_{t_1 t_2},
    \\qquad L = \\sqrt{2}\\,\\sigma_{\\max}\\big(C_K W A^{-1}\\big),

with :math:`C_K = I - \\tfrac{1}{K_S}\\mathbf{1}\\mathbf{1}^\\top` (the gradient of
:math:`\\ell` in :math:`z'` is :math:`(C_K W A^{-1})^\\top (p - r)` for two
distributions ``p`` and ``r`` on the source classes, so its norm is at most
:math:`\\sqrt 2\\,\\sigma_{\\max}`), and a label cost that bounds the change of the
loss when only the label changes (the mediant inequality on
:math:`(Bp)_t / (Bp)_{t'}`):

.. math::

    \\lambda_{t t'} = \\max_s \\big|\\log B_{ts} - \\log B_{t's}\\big|, \\quad \\lambda_{tt} = 0.

Both constants are exact consequences of the form of ``h_T``, so on empirical
distributions the inequality holds deterministically (``bound >=
transferred_loss`` on the same samples). The public reference code instead
multiplied a label distance by 1e8 and measured the feature constant at the
samples; here every cost stays in nats (``lambda`` is a difference of
log-probabilities), the transport is exact (POT's network simplex) in float64,
and the same ground cost serves the transport plan and, in
:func:`~transferlab.analysis.fit_transforms`, its gradient.

Pure NumPy and SciPy; POT is imported when the Wasserstein term is computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist
from scipy.special import entr, log_softmax, logsumexp

from transferlab._validation import check_features, check_matrix

#: Column sums of the label map and the sum of the prior may differ from 1 by this much.
_SIMPLEX_ATOL = 1e-6
#: The network simplex iterates at most this many times (POT's default is 1e5: too few
#: for the (n_source * K_T) x n_target problems of the bound).
_EMD_MAX_ITER = 50_000_000
#: A feature map whose condition number exceeds this is treated as singular.
_MAX_CONDITION = 1e12


@dataclass(frozen=True)
class TaskTransform:
    """The transforms of a source task towards a target task.

    Attributes
    ----------
    feature_map : ndarray of shape (D, D)
        ``A``, invertible.
    feature_shift : ndarray of shape (D,)
        ``b``: source features move to ``A z + b``.
    label_map : ndarray of shape (K_T, K_S)
        ``B``, column-stochastic: ``B[t, s] = P(Y_T = t | Y_S = s)``.
    prior : ndarray of shape (K_S,)
        ``D``, a distribution on the source classes.
    """

    feature_map: np.ndarray
    feature_shift: np.ndarray
    label_map: np.ndarray
    prior: np.ndarray

    @classmethod
    def identity(cls, n_features: int, prior) -> TaskTransform:
        """``A = I``, ``b = 0``, ``B = I`` (same classes) and the given prior."""
        prior = np.asarray(prior, dtype=np.float64)
        k = prior.shape[0]
        return cls(np.eye(n_features), np.zeros(n_features), np.eye(k), prior)


@dataclass(frozen=True)
class TransferBound:
    """The bound, its three terms, its constants, and the loss it bounds.

    Attributes
    ----------
    bound : float
        ``source_loss + conditional_entropy + wasserstein`` (nats).
    source_loss : float
        The ``D``-re-weighted cross-entropy of the source head on the source samples.
    conditional_entropy : float
        :math:`H_{B,D}(Y_T \\mid Y_S)` in nats.
    wasserstein : float
        The optimal transport cost between the transformed source and the target
        under the ground cost ``c`` (in nats: ``c`` is scaled by the Lipschitz
        constant); ``inf`` when labels with an unbounded loss cannot be matched.
    lipschitz : float
        ``L``, the feature constant of the ground cost.
    max_label_cost : float
        The largest ``lambda_{t t'}``.
    transferred_loss, transferred_accuracy : float
        Mean cross-entropy and accuracy of ``h_T`` on the target samples: the
        quantity the bound bounds (``bound >= transferred_loss`` always holds).
    """

    bound: float
    source_loss: float
    conditional_entropy: float
    wasserstein: float
    lipschitz: float
    max_label_cost: float
    transferred_loss: float
    transferred_accuracy: float

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in self.__dict__.items()}


# --------------------------------------------------------------------------- checks


def _check_simplex_columns(label_map) -> np.ndarray:
    B = check_matrix(label_map, "label_map", "(K_T, K_S)")
    if (B < 0).any():
        raise ValueError(f"label_map must be non-negative; its smallest entry is {B.min():.3g}")
    sums = B.sum(axis=0)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _SIMPLEX_ATOL)
    if bad.size:
        raise ValueError(
            f"label_map must be column-stochastic (each column P(Y_T | Y_S = s) sums to 1); "
            f"column {int(bad[0])} sums to {sums[bad[0]]:.6g}"
        )
    return B


def _check_prior(prior, n_classes: int | None = None, name: str = "prior") -> np.ndarray:
    D = np.asarray(prior, dtype=np.float64)
    if D.ndim != 1 or D.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D distribution; got shape {D.shape}")
    if not np.isfinite(D).all() or (D < 0).any() or abs(D.sum() - 1.0) > _SIMPLEX_ATOL:
        raise ValueError(f"{name} must be finite, non-negative and sum to 1; got sum {D.sum():.6g}, min {D.min():.3g}")
    if n_classes is not None and D.shape[0] != n_classes:
        raise ValueError(f"{name} has {D.shape[0]} entries but there are {n_classes} source classes")
    return D


def _check_class_indices(labels, n: int, n_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with one label per row ({n}); got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must be integer class indices in 0..{n_classes - 1}; got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"{name} must be class indices in 0..{n_classes - 1} (the rows of the head or label map); "
            f"got values in {int(arr.min())}..{int(arr.max())}"
        )
    return arr.astype(np.int64)


def _check_head(head_weight, head_bias) -> tuple[np.ndarray, np.ndarray]:
    """The source head ``(W, c)`` as float64: ``W`` of shape (K_S, D), ``c`` of shape (K_S,), both finite."""
    W = check_matrix(head_weight, "head_weight", "(K_S, D)")
    c = np.asarray(head_bias, dtype=np.float64)
    if c.shape != (W.shape[0],) or not np.isfinite(c).all():
        raise ValueError(f"head_bias must be finite with shape ({W.shape[0]},); got shape {c.shape}")
    return W, c


def _check_transform(transform: TaskTransform, n_features: int, n_source_classes: int) -> tuple:
    if not isinstance(transform, TaskTransform):
        raise ValueError(f"transform must be a TaskTransform; got {type(transform).__name__}")
    A = check_matrix(transform.feature_map, "feature_map", "(D, D)")
    if A.shape != (n_features, n_features):
        raise ValueError(f"feature_map must be ({n_features}, {n_features}) for {n_features} features; got {A.shape}")
    b = np.asarray(transform.feature_shift, dtype=np.float64)
    if b.shape != (n_features,) or not np.isfinite(b).all():
        raise ValueError(f"feature_shift must be finite with shape ({n_features},); got shape {b.shape}")
    B = _check_simplex_columns(transform.label_map)
    if B.shape[1] != n_source_classes:
        raise ValueError(f"label_map has {B.shape[1]} columns but the source head has {n_source_classes} classes")
    D = _check_prior(transform.prior, n_source_classes)
    condition = np.linalg.cond(A)
    if not np.isfinite(condition) or condition > _MAX_CONDITION:
        raise ValueError(f"feature_map is (numerically) singular: condition number {condition:.3g}")
    return A, b, B, D


# --------------------------------------------------------------------------- the terms


def conditional_entropy(label_map, prior) -> float:
    """Conditional entropy of the target label given the source label.

    .. math::

        H_{B,D}(Y_T \\mid Y_S) = -\\sum_{s} D_s \\sum_{t} B_{ts} \\log B_{ts}

    in nats, with :math:`0 \\log 0 = 0` (Mehra, Zhang & Hamm 2023, the
    label-transform term of the bound).

    Parameters
    ----------
    label_map : array of shape (K_T, K_S)
        Column-stochastic ``B``.
    prior : array of shape (K_S,)
        ``D``, a distribution on the source classes.

    Returns
    -------
    float
        In ``[0, log K_T]``; 0 exactly when every column of ``B`` with
        ``D_s > 0`` is one-hot.
    """
    B = _check_simplex_columns(label_map)
    D = _check_prior(prior, B.shape[1])
    return float(D @ entr(B).sum(axis=0))


def reweighted_source_loss(source_log_probs, source_labels, prior) -> float:
    """The source cross-entropy with the class prior changed to ``D``.

    .. math::

        \\mathcal{L}_S^D = \\sum_s D_s\\; \\frac{1}{n_s} \\sum_{i:\\, s_i = s} -\\log p_s(z_i)

    (Mehra, Zhang & Hamm 2023: the source loss of the prior-transformed task;
    equal to the importance-weighted loss :math:`\\mathbb{E}_S[(D_s / \\pi_s)\\,\\ell]`
    with the empirical prior :math:`\\pi`).

    Parameters
    ----------
    source_log_probs : array of shape (n, K_S)
        Log-probabilities of the source head (rows of a log-softmax).
    source_labels : array of shape (n,)
        Integer class indices in ``0..K_S-1``.
    prior : array of shape (K_S,)
        ``D``; every class with ``D_s > 0`` needs at least one sample.
    """
    log_p = np.asarray(source_log_probs, dtype=np.float64)
    if log_p.ndim != 2 or 0 in log_p.shape:
        raise ValueError(f"source_log_probs must be non-empty and 2-D (n_samples, K_S); got shape {log_p.shape}")
    if np.isnan(log_p).any() or (log_p > 1e-9).any():
        raise ValueError("source_log_probs must be log-probabilities (<= 0, no NaN)")
    n, k = log_p.shape
    y = _check_class_indices(source_labels, n, k, "source_labels")
    D = _check_prior(prior, k)
    per_class = _per_class_loss(-log_p[np.arange(n), y], y, k, D)
    return float(D @ per_class)


def _check_weighted_classes(y: np.ndarray, k: int, prior: np.ndarray) -> np.ndarray:
    """Samples per source class; every class the prior weighs needs one."""
    counts = np.bincount(y, minlength=k)
    missing = np.flatnonzero((counts == 0) & (prior > 0))
    if missing.size:
        raise ValueError(
            f"source class {int(missing[0])} has prior {prior[missing[0]]:.3g} > 0 but no sample; "
            "every class with positive prior needs at least one source sample"
        )
    return counts


def _per_class_loss(losses: np.ndarray, y: np.ndarray, k: int, prior: np.ndarray) -> np.ndarray:
    """Mean loss per source class (0 for a class without samples, which the prior must not weigh)."""
    counts = _check_weighted_classes(y, k, prior)
    totals = np.bincount(y, weights=losses, minlength=k)
    return np.divide(totals, counts, out=np.zeros(k), where=counts > 0)


def feature_lipschitz(head_weight, feature_map=None) -> float:
    """The feature constant ``L`` of the ground cost.

    .. math::

        L = \\sqrt{2}\\; \\sigma_{\\max}\\big(C_K\\, W A^{-1}\\big),
        \\qquad C_K = I_{K} - \\tfrac{1}{K}\\mathbf{1}\\mathbf{1}^\\top

    bounds :math:`\\lVert \\nabla_{z'} \\ell(z', t)\\rVert_2` for the loss of
    :math:`h_T(z') = B\\,\\mathrm{softmax}(W A^{-1}(z' - b) + c)` at every
    ``z'`` and ``t``, for every column-stochastic ``B``: the gradient is
    :math:`(C_K W A^{-1})^\\top (p - r)` with ``p`` the softmax and ``r`` the
    posterior over source classes given ``t``, and
    :math:`\\lVert p - r\\rVert_2 \\le \\sqrt 2`. ``C_K`` removes the direction
    along which the softmax is invariant (adding a vector to every row of ``W``).

    Parameters
    ----------
    head_weight : array of shape (K_S, D)
    feature_map : array of shape (D, D), optional
        ``A``; identity when omitted.
    """
    W = check_matrix(head_weight, "head_weight", "(K_S, D)")
    centred = W - W.mean(axis=0, keepdims=True)
    if feature_map is not None:
        A = check_matrix(feature_map, "feature_map", "(D, D)")
        if A.shape != (W.shape[1], W.shape[1]):
            raise ValueError(f"feature_map must be ({W.shape[1]}, {W.shape[1]}); got {A.shape}")
        # C W A^{-1} = (A^{-T} (C W)^T)^T, without forming the inverse.
        centred = np.linalg.solve(A.T, centred.T).T
    return float(np.sqrt(2.0) * np.linalg.norm(centred, ord=2))


def _label_cost(log_label_map):
    """``lambda`` of the ground cost from ``log B`` (a NumPy array or a torch tensor).

    Pairs ``(t, t')`` whose rows are both zero at a source class ``s`` give NaN there; that
    class does not bound the ratio (the mediant inequality only needs the others) and is skipped.
    """
    if isinstance(log_label_map, np.ndarray):
        with np.errstate(invalid="ignore"):
            diff = np.abs(log_label_map[:, None, :] - log_label_map[None, :, :])
        return np.where(np.isnan(diff), -np.inf, diff).max(axis=2)
    return (log_label_map[:, None, :] - log_label_map[None, :, :]).abs().amax(dim=2)


def label_cost(label_map) -> np.ndarray:
    """The label part ``lambda`` of the ground cost, in nats.

    .. math::

        \\lambda_{tt'} = \\max_s \\big|\\log B_{ts} - \\log B_{t's}\\big|

    For any source probabilities ``p`` the ratio
    :math:`(Bp)_t / (Bp)_{t'} = \\sum_s B_{ts} p_s / \\sum_s B_{t's} p_s` lies
    between the smallest and the largest :math:`B_{ts} / B_{t's}` (the mediant
    inequality), so changing the label from ``t`` to ``t'`` changes the loss
    :math:`-\\log (Bp)_t` by at most :math:`\\lambda_{tt'}`, whatever the features;
    and the bound is attained as ``p`` approaches a vertex. A zero in one row
    where the other is positive makes :math:`\\lambda_{tt'} = \\infty`: such labels
    can only be transported to themselves.

    Parameters
    ----------
    label_map : array of shape (K_T, K_S)
        Column-stochastic ``B``.

    Returns
    -------
    ndarray of shape (K_T, K_T)
        Symmetric, zero on the diagonal.
    """
    B = _check_simplex_columns(label_map)
    with np.errstate(divide="ignore"):
        cost = _label_cost(np.log(B))
    np.fill_diagonal(cost, 0.0)
    return np.maximum(cost, 0.0)  # a pair of all-zero rows gives -inf: no change at all


def _ground_cost(moved, target_features, target_labels, lipschitz, label_costs):
    """``c`` between every (transported source sample, target label) atom and every target sample.

    Returns an array of shape (n_source, K_T, n_target):
    ``L * ||A z_i + b - z_j|| + lambda[t, t_j]``. The one ground cost of the bound,
    used for the plan and for the gradient in :func:`fit_transforms`; NumPy arrays
    or torch tensors (``torch.cdist``, whose gradient is defined where the distance is 0).
    """
    if isinstance(moved, np.ndarray):
        distance = cdist(moved, target_features)
    else:
        import torch

        distance = torch.cdist(moved, target_features, compute_mode="donot_use_mm_for_euclid_dist")
    return lipschitz * distance[:, None, :] + label_costs[:, target_labels][None, :, :]


def _atom_masses(label_map, prior, source_labels, counts):
    """Mass of atom (i, t): ``D[s_i] / n_{s_i} * B[t, s_i]`` (the exact transformed empirical source).

    ``counts`` are the samples per source class (a NumPy array, or a tensor beside torch inputs).
    """
    per_class = prior / counts.clip(min=1)
    return per_class[source_labels][:, None] * label_map[:, source_labels].T


def _emd2(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
    import ot

    if a.size == 0 or b.size == 0:
        return 0.0
    value, log = ot.emd2(a, b, cost, numItermax=_EMD_MAX_ITER, log=True)
    if log["warning"] is not None:
        raise RuntimeError(f"exact optimal transport did not reach an optimum: {log['warning']}")
    return float(value)


def _blocked_emd2(masses: np.ndarray, atom_labels: np.ndarray, cost: np.ndarray, target_labels: np.ndarray,
                  label_costs: np.ndarray) -> float:
    """Exact OT where label pairs of infinite cost are forbidden.

    The labels split into components joined by finite label costs; mass never
    crosses components, so each is its own transport problem, which is feasible
    only when both sides carry the same mass there (else the cost is infinite).
    POT's solver would report an infeasible problem as a zero cost.
    """
    finite = np.isfinite(label_costs)
    n_comp, comp = connected_components(finite, directed=False)
    if n_comp == 1:
        return _emd2(masses, np.full(target_labels.size, 1.0 / target_labels.size), cost)
    target_mass = np.full(target_labels.size, 1.0 / target_labels.size)
    total = 0.0
    for c in range(n_comp):
        labels_c = np.flatnonzero(comp == c)
        if not finite[np.ix_(labels_c, labels_c)].all():
            raise ValueError("label costs must be finite within each group of labels that can exchange mass")
        src = np.isin(atom_labels, labels_c)
        tgt = np.isin(target_labels, labels_c)
        mass_s, mass_t = masses[src].sum(), target_mass[tgt].sum()
        if abs(mass_s - mass_t) > _SIMPLEX_ATOL:
            return float("inf")
        if mass_t == 0:
            continue
        total += mass_t * _emd2(masses[src] / mass_s, target_mass[tgt] / mass_t, cost[np.ix_(src, tgt)])
    return total


def _hard_atoms(moved, source_labels, target_features, target_labels, label_map, prior, lipschitz, label_costs):
    k_t = label_map.shape[0]
    counts = np.bincount(source_labels, minlength=label_map.shape[1]).astype(np.float64)
    masses = _atom_masses(label_map, prior, source_labels, counts).reshape(-1)
    finite_costs = np.where(np.isfinite(label_costs), label_costs, 0.0)
    cost = _ground_cost(moved, target_features, target_labels, lipschitz, finite_costs)
    cost = cost.reshape(-1, target_features.shape[0])
    atom_labels = np.tile(np.arange(k_t), moved.shape[0])
    keep = masses > 0  # atoms without mass do not take part
    return masses[keep], atom_labels[keep], cost[keep]


def _check_pair(source_features, source_labels, target_features, target_labels, n_source_classes, n_target_classes):
    zs = check_features(source_features, name="source_features")
    zt = check_features(target_features, name="target_features")
    if zs.shape[1] != zt.shape[1]:
        raise ValueError(
            f"source_features and target_features must have the same number of features; "
            f"got {zs.shape[1]} and {zt.shape[1]}"
        )
    ys = _check_class_indices(source_labels, zs.shape[0], n_source_classes, "source_labels")
    yt = _check_class_indices(target_labels, zt.shape[0], n_target_classes, "target_labels")
    return zs, ys, zt, yt


def transfer_wasserstein(source_features, source_labels, target_features, target_labels, transform: TaskTransform,
                         *, head_weight) -> float:
    """The Wasserstein term of the bound: exact OT between the transformed source and the target.

    The transformed empirical source puts mass :math:`D_{s_i} B_{t s_i} / n_{s_i}`
    on the atom :math:`(A z_i + b,\\, t)` for every sample ``i`` and target label
    ``t``; the target puts :math:`1/m` on each :math:`(z_j, t_j)`. The value is

    .. math::

        W_c = \\min_{\\gamma \\in \\Pi(P_{S'}, P_T)} \\sum \\gamma_{(i,t), j}
        \\big(L\\,\\lVert A z_i + b - z_j\\rVert_2 + \\lambda_{t t_j}\\big)

    with ``L`` from :func:`feature_lipschitz` and ``lambda`` from
    :func:`label_cost` (Mehra, Zhang & Hamm 2023, with the constants derived in
    the module docstring), solved exactly by POT's network simplex
    (``ot.emd2``) in float64. Labels whose loss is unbounded (a zero in their row
    of ``B``) only exchange mass with themselves; when the masses of such a
    label differ between the two sides the term is ``inf``.

    Parameters
    ----------
    source_features : array of shape (n, D)
    source_labels : array of shape (n,)
        Source class indices in ``0..K_S-1``.
    target_features : array of shape (m, D)
    target_labels : array of shape (m,)
        Target class indices in ``0..K_T-1`` (the rows of ``B``).
    transform : TaskTransform
    head_weight : array of shape (K_S, D)
        The source head's weight (for ``L``).
    """
    W = check_matrix(head_weight, "head_weight", "(K_S, D)")
    A, b, B, D = _check_transform(transform, W.shape[1], W.shape[0])
    zs, ys, zt, yt = _check_pair(source_features, source_labels, target_features, target_labels, W.shape[0], B.shape[0])
    return _wasserstein(zs, ys, zt, yt, A, b, B, D, feature_lipschitz(W, A), label_cost(B))


def _wasserstein(zs, ys, zt, yt, A, b, B, D, lipschitz, label_costs) -> float:
    _check_weighted_classes(ys, B.shape[1], D)
    moved = zs @ A.T + b
    masses, atom_labels, cost = _hard_atoms(moved, ys, zt, yt, B, D, lipschitz, label_costs)
    return _blocked_emd2(masses, atom_labels, cost, yt, label_costs)


def _transferred_log_probs(features, A, b, B, head_weight, head_bias) -> np.ndarray:
    """``log h_T(z')`` for target features: ``log B softmax(W A^{-1}(z' - b) + c)``."""
    source = np.linalg.solve(A, (features - b).T).T
    log_p = log_softmax(source @ head_weight.T + head_bias, axis=1)
    with np.errstate(divide="ignore"):
        log_b = np.log(B)
    return logsumexp(log_b[None, :, :] + log_p[:, None, :], axis=2)


def transfer_bound(source_features, source_labels, target_features, target_labels, transform: TaskTransform,
                   *, head_weight, head_bias) -> TransferBound:
    """The transfer bound of Mehra, Zhang & Hamm (2023) and the loss it bounds.

    .. math::

        \\mathcal{L}_T(h_T) \\le \\mathcal{L}_S^D(h_S) + H_{B,D}(Y_T \\mid Y_S) + W_c(P_{S'}, P_T)

    with :math:`h_S(z) = \\mathrm{softmax}(Wz + c)` the source head,
    :math:`h_T(z') = B\\,h_S(A^{-1}(z' - b))` the transformed classifier, and the
    terms of :func:`reweighted_source_loss`, :func:`conditional_entropy` and
    :func:`transfer_wasserstein` (see the module docstring for why the ground
    cost makes the inequality hold). All three are computed on the given
    samples, so on them the inequality holds exactly: ``bound >=
    transferred_loss``. The real question the study asks is how the bound
    compares with the loss of a linear probe trained on the target.

    Parameters
    ----------
    source_features : array of shape (n, D)
        Source features (as seen by the head).
    source_labels : array of shape (n,)
        Source class indices ``0..K_S-1``; every class with ``D_s > 0`` needs a sample.
    target_features : array of shape (m, D)
    target_labels : array of shape (m,)
        Target class indices ``0..K_T-1``.
    transform : TaskTransform
        ``A, b, B, D`` (e.g. from :func:`~transferlab.analysis.fit_transforms`).
    head_weight : array of shape (K_S, D)
    head_bias : array of shape (K_S,)

    Returns
    -------
    TransferBound

    Examples
    --------
    With the target equal to the source and identity transforms, the entropy and
    Wasserstein terms vanish and the bound is the source loss:

    >>> rng = np.random.default_rng(0)
    >>> z, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    >>> W, c = rng.normal(size=(2, 3)), np.zeros(2)
    >>> r = transfer_bound(z, y, z, y, TaskTransform.identity(3, [0.5, 0.5]), head_weight=W, head_bias=c)
    >>> bool(np.isclose(r.bound, r.source_loss, atol=1e-6)), bool(np.isclose(r.bound, r.transferred_loss, atol=1e-6))
    (True, True)
    """
    W, c = _check_head(head_weight, head_bias)
    A, b, B, D = _check_transform(transform, W.shape[1], W.shape[0])
    zs, ys, zt, yt = _check_pair(source_features, source_labels, target_features, target_labels, W.shape[0], B.shape[0])

    log_p = log_softmax(zs @ W.T + c, axis=1)
    source_loss = float(D @ _per_class_loss(-log_p[np.arange(ys.size), ys], ys, W.shape[0], D))
    entropy = float(D @ entr(B).sum(axis=0))
    lipschitz = feature_lipschitz(W, A)
    costs = label_cost(B)
    wasserstein = _wasserstein(zs, ys, zt, yt, A, b, B, D, lipschitz, costs)
    log_q = _transferred_log_probs(zt, A, b, B, W, c)
    return TransferBound(
        bound=source_loss + entropy + wasserstein,
        source_loss=source_loss,
        conditional_entropy=entropy,
        wasserstein=wasserstein,
        lipschitz=lipschitz,
        max_label_cost=float(costs.max()),
        transferred_loss=float(-log_q[np.arange(yt.size), yt].mean()),
        transferred_accuracy=float((log_q.argmax(axis=1) == yt).mean()),
    )
