"""PED: potential-energy decline of the target features, composed with any feature score.

Li, Hu, Ge, Shan & Duan, "Exploring Model Transferability through the Lens of
Potential Energy", ICCV 2023. Fine-tuning pushes apart classes whose features
overlap; PED simulates a few steps of that motion (each class a sphere, an
elastic repulsion between overlapping spheres) on the static features, and then
scores the moved features with an existing score (LogME, SFDA, GBC, ...).

- :func:`ped_transform`: the dynamics, a pure function of ``features`` and
  ``labels`` returning moved features (float64);
- ``"ped+<score>"``: the composition, for every registered per-model
  transferability score that reads ``features`` (``spec("ped+logme")``,
  ``spec("ped+sfda")``, ``transferlab rank --scores ped+logme``). The registry
  builds its spec on first lookup (:func:`~transferlab.scores._registry.register_composition`);
  :func:`~transferlab.scores.available` does not list the compositions.

The dynamics follow the authors' code (``lixiaotong97/PED``, ``metrics.py``:
``One_Step_PED`` and ``PED_Score``), with its defaults; the differences are
listed in :func:`ped_transform`.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
from scipy import sparse
from scipy.spatial.distance import cdist

from transferlab._linalg import binary_exponent
from transferlab._validation import check_features_labels, check_int, check_scalar
from transferlab.scores._registry import ScoreSpec, register_composition

REFERENCE = (
    'Li, Hu, Ge, Shan & Duan, "Exploring Model Transferability through the Lens of Potential Energy", ICCV 2023'
)

#: The options of the dynamics and their defaults (the authors' ``evaluate_metric_cpu.py``:
#: ``--step 0.1``, ``--nsigma 0.6``, ``--er 0.5``, ``--constant 1``; six steps in ``PED_Score``).
DEFAULTS = {"time_step": 0.1, "nsigma": 0.6, "exit_ratio": 0.5, "max_steps": 6, "force_constant": 1.0}
#: A composition takes each option with this prefix (``ped_nsigma=...``), clear of the base score's options.
OPTION_PREFIX = "ped_"


def ped_transform(
    features,
    labels,
    *,
    time_step: float = 0.1,
    nsigma: float = 0.6,
    exit_ratio: float = 0.5,
    max_steps: int = 6,
    force_constant: float = 1.0,
) -> np.ndarray:
    """The features after PED's potential-energy-decline dynamics: each class moved rigidly away from overlaps.

    In standardised coordinates ``z_i = (x_i - m) / s`` (``m``, ``s`` the
    per-dimension mean and standard deviation of the features, ``1/N``), class
    ``c`` is a sphere centred at its mean ``mu_c`` with radius
    ``nsigma * R_c``, ``R_c = sqrt(tr Sigma_c)`` the root of its total variance
    (``1/n_c``). Two spheres that overlap repel each other elastically, with a
    force proportional to the overlap; from rest, one step of length ``t``
    (``time_step``, unit mass) moves a class by ``F t^2 / 2``, never by more
    than the overlap:

    .. math::

        o_{ab} = \\max\\big(\\nu (R_a + R_b) - \\lVert \\mu_a - \\mu_b \\rVert,\\ 0\\big),
        \\qquad
        \\Delta_a = \\sum_{b \\ne a} \\min\\!\\big(\\tfrac12 \\kappa\\, o_{ab}\\, t^2,\\ o_{ab}\\big)\\,
            \\frac{\\mu_a - \\mu_b}{\\lVert \\mu_a - \\mu_b \\rVert},

    ``nu = nsigma``, ``kappa = force_constant``. Every sample of class ``a``
    moves by ``Delta_a`` (so the radii never change and only the means are
    iterated), then the next step starts from the moved means. The motion
    stops when a step's total displacement ``E_k = sum_a ||Delta_a||_1`` falls
    to ``exit_ratio`` of the first step's, ``E_k / E_0 <= exit_ratio`` (that step
    is not taken), or after ``max_steps`` steps. The result is mapped back,
    ``x_i' = x_i + s * sum_k Delta_{y_i}^{(k)}``.

    Differences from the authors' code. They standardise with the mean and
    standard deviation of the model's features on ImageNet (val), floored at
    ``1e-3``; no such reference set reaches a score here, so the target
    features' own statistics are used, and a constant dimension (``max = min``)
    is left as it is, unmoved (its standardised value is 0 for every class).
    Two classes with the same mean have no direction to repel along: their pair
    adds nothing (a division by zero there). ``E_0 = 0`` (no overlap) leaves the
    features unchanged, as there.

    Properties: the output moves with the input under translation and positive
    scaling of the features (``T(aX + b) = a T(X) + b``, up to rounding) and is
    unchanged by renaming the classes or reordering the samples, so a
    composition ``ped+<score>`` keeps the score's invariances. Cost
    ``O(N D + steps * C^2 D)``.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Target-task features.
    labels : array-like of shape (n_samples,)
        Class labels (integers or strings, at least 2 classes; a class of one
        sample is a sphere of radius 0).
    time_step : float, default=0.1
        ``t``, positive.
    nsigma : float, default=0.6
        ``nu``, the radius of a class in standard deviations, positive (the
        authors try 0.3 and 0.6).
    exit_ratio : float, default=0.5
        Stop when a step moves at most this fraction of the first step, in ``[0, 1)``.
    max_steps : int, default=6
        At most this many steps (``>= 0``; 0 returns the features unchanged).
    force_constant : float, default=1.0
        ``kappa``, positive.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64
        The moved features (a new array).

    Raises
    ------
    ValueError
        On invalid ``features`` or ``labels`` (see
        :func:`~transferlab._validation.check_features_labels`) or an option
        out of its range, naming it.

    References
    ----------
    X. Li, Z. Hu, Y. Ge, Y. Shan, L.-Y. Duan. Exploring Model Transferability
    through the Lens of Potential Energy. ICCV 2023.

    Examples
    --------
    One feature, classes ``{-1, 1}`` and ``{2, 4}``: ``s = sqrt(3.25)``, each
    class has radius ``1 / s``, the means 0 and 3 are ``3 / s`` apart, so with
    ``nsigma=2`` the spheres overlap by ``o = 4 / s - 3 / s = 1 / s``. The first
    step moves each class away from the other by ``t^2 o / 2 = 0.005 o``; the
    next overlap is ``0.99 o``, whose step is 0.99 of the first (above 0.5), and
    so on: six steps of ``0.005 * 0.99^k`` in the units of the features.

    >>> moved = ped_transform([[-1.0], [1.0], [2.0], [4.0]], [0, 0, 1, 1], nsigma=2.0)
    >>> shift = 0.005 * sum(0.99**k for k in range(6))
    >>> bool(np.allclose(moved.ravel(), [-1 - shift, 1 - shift, 2 + shift, 4 + shift]))
    True
    """
    X, y, classes = check_features_labels(features, labels, min_per_class=1)
    time_step = check_scalar(time_step, "time_step", float, min_val=0.0, include_boundaries="neither")
    nsigma = check_scalar(nsigma, "nsigma", float, min_val=0.0, include_boundaries="neither")
    exit_ratio = check_scalar(exit_ratio, "exit_ratio", float, min_val=0.0, max_val=1.0, include_boundaries="left")
    max_steps = check_int(max_steps, "max_steps", minimum=0)
    force_constant = check_scalar(force_constant, "force_constant", float, min_val=0.0, include_boundaries="neither")
    return _ped(X, y, classes.shape[0], time_step, nsigma, exit_ratio, max_steps, force_constant)


def _ped(X, y, n_classes, time_step, nsigma, exit_ratio, max_steps, force_constant) -> np.ndarray:
    """:func:`ped_transform` on validated input (``X`` a float64 copy, modified and returned).

    Every statistic comes from one pass over the class sums and one over the
    squared within-class residuals: the standardised class means are
    ``(mu_c - m) / s`` and the squared radii ``sum_j var_cj / s_j^2``, with the
    total variance ``s_j^2 = sum_c p_c (var_cj + (mu_cj - m_j)^2)``; the features
    are divided by a power of two near their magnitude first (exact), so that no
    square overflows or underflows.
    """
    moving = np.ptp(X, axis=0) > 0  # a constant dimension stays exactly constant
    if max_steps == 0 or not moving.any():
        return X
    n = X.shape[0]
    exponent = binary_exponent(X)
    Xs = np.ldexp(X, -exponent)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    indicators = sparse.csr_matrix((np.ones(n), (y, np.arange(n))), shape=(n_classes, n))
    class_means = np.asarray(indicators @ Xs) / counts[:, None]
    residual = class_means[y]
    np.subtract(Xs, residual, out=residual)
    np.square(residual, out=residual)
    within = np.asarray(indicators @ residual) / counts[:, None]  # per-class variance of each column
    weights = counts / n
    mean = weights @ class_means
    spread = np.sqrt(weights @ (within + (class_means - mean) ** 2))  # s_j, in units of Xs
    moving &= spread > 0  # a variation whose square underflows (1e-160 of the largest entry) is none
    spread[~moving] = np.inf  # a constant column: standardised to 0, never moved
    means = (class_means - mean) / spread
    radius = np.sqrt(np.sum(within / spread**2, axis=1))

    reach = nsigma * (radius[:, None] + radius[None, :])
    factor = min(0.5 * force_constant * time_step**2, 1.0)
    position = means.copy()
    first = None
    for _ in range(max_steps):
        delta = _step(position, reach, factor)
        change = float(np.sum(np.abs(delta)))
        if first is None:
            first = change
        if not (first > 0 and change / first > exit_ratio):
            break
        position += delta
    shift = np.ldexp((position - means) * np.where(moving, spread, 0.0), exponent)
    X += shift[y]
    return X


def _step(position: np.ndarray, reach: np.ndarray, factor: float) -> np.ndarray:
    """One step's displacement of every class mean, ``Delta_a`` of :func:`ped_transform` (C, D)."""
    dist = cdist(position, position)
    overlap = np.maximum(reach - dist, 0.0)
    np.fill_diagonal(overlap, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(dist > 0, factor * overlap / dist, 0.0)  # same mean: no direction, no push
    # sum_b w_ab (mu_a - mu_b), one matrix product instead of a C x C x D array of differences
    return weight.sum(axis=1)[:, None] * position - weight @ position


# --------------------------------------------------------------------------- "ped+<score>"


def _check_base(base: ScoreSpec) -> None:
    """A ValueError naming ``base`` unless it is a per-model transferability score that reads features."""
    if base.kind != "model":
        raise ValueError(
            f"PED composes with a per-model score; {base.name!r} is a pool score (its value depends on the "
            "other candidates), which 'ped+<score>' does not support"
        )
    if "features" not in base.needs:
        raise ValueError(
            f"PED moves the target features, and {base.name!r} does not read them (it needs {sorted(base.needs)}); "
            "compose it with a score that needs 'features', e.g. 'ped+logme'"
        )
    if base.group != "score":
        raise ValueError(
            f"PED composes with a transferability score (group 'score'); {base.name!r} is a {base.group}, "
            "which 'ped+<score>' does not support"
        )


def _compose(base: ScoreSpec) -> ScoreSpec:
    """The spec of ``"ped+<base>"``: :func:`ped_transform` on the features, then the base score.

    Needs, seeding and every trait are the base's: the transform keeps
    translation, positive scaling, class renaming and sample order (see
    :func:`ped_transform`), accepts classes of one sample and constant input
    (which it leaves unchanged), so the composition keeps exactly what the
    base keeps. It supports class targets only, and takes no ``sample_weight``
    (the dynamics are unweighted) even when the base does.
    """
    _check_base(base)
    base_signature = inspect.signature(base.func)
    # Not sample_weight: the transform's means and radii are unweighted, so weights reaching only the
    # base would not equal repeated rows; a bootstrap then resamples rows instead (rank._bootstrap).
    parameters = [p for p in base_signature.parameters.values() if p.name != "sample_weight"]
    if "features" not in base_signature.parameters or "labels" not in base_signature.parameters:
        raise ValueError(f"score {base.name!r} does not take features= and labels= keywords; PED cannot compose it")
    options = {OPTION_PREFIX + key: value for key, value in DEFAULTS.items()}
    clash = sorted(set(options) & set(base_signature.parameters))
    if clash:
        raise ValueError(f"score {base.name!r} has an option {clash[0]!r}, which PED's options would shadow")
    var_keyword = [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]
    ped_parameters = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in options.items()]
    signature = base_signature.replace(
        parameters=[p for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD] + ped_parameters + var_keyword
    )

    def composite(*args, **kwargs):
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        dynamics = {key: arguments.pop(OPTION_PREFIX + key, value) for key, value in DEFAULTS.items()}
        arguments["features"] = ped_transform(arguments["features"], arguments["labels"], **dynamics)
        for p in var_keyword:
            arguments.update(arguments.pop(p.name, {}))
        return base.func(**arguments)

    composite.__signature__ = signature
    composite.__name__ = composite.__qualname__ = f"ped_{base.name}"
    composite.__module__ = __name__
    composite.__doc__ = (
        f"PED, then {base.name}: {base.summary}\n\n"
        f"``{base.name}`` of :func:`~transferlab.scores._ped.ped_transform` of the features. The options "
        f"{', '.join(options)} reach the transform (without the prefix); the others reach {base.name}."
    )
    changes = {}
    if any(f.name == "targets" for f in dataclasses.fields(base.traits)):
        changes["targets"] = frozenset({"classes"})  # the dynamics need classes
    return ScoreSpec(
        name=f"ped+{base.name}",
        func=composite,
        needs=base.needs,
        summary=f"PED (potential-energy decline of the features), then {base.name}: {base.summary}",
        reference=f"{REFERENCE}; base score: {base.reference}",
        kind="model",
        direction=1,
        traits=dataclasses.replace(base.traits, **changes),
        group="score",
    )


register_composition("ped", _compose)
