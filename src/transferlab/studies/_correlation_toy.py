"""The linear toy of the correlation study: feature correlation alpha, task correlation beta.

After Mohamud & Brink, "An empirical study of task and feature correlations in
the reuse of pre-trained models" (their Figures 1 and 2). The generator is ours
(DESIGN.md, "Correlation study"):

- ``x = [a; b]`` with ``a, b`` in R^k, standard normal coordinates and
  ``corr(a_i, b_i) = alpha`` (``b = alpha a + sqrt(1 - alpha^2) z``), so
  ``Cov(x) = [[I, alpha I], [alpha I, I]]``;
- Alice's label ``y_A = sign(1'a)``;
- scenario S1: Bob's label ``y_B = sign(1'b)``: the tasks are linked only through alpha;
- scenario S2: ``alpha = 0`` and ``y_B = y_A`` with probability ``(1 + beta) / 2``,
  ``-y_A`` otherwise (task correlation beta).

Alice trains ``f(x) = v tanh(w'x)`` by full-batch gradient descent on the
logistic loss with weight decay. Bob reuses it as is (``sign f``) or re-fits
the output weight ``v`` on his labels. For jointly Gaussian ``u = w'x`` and
Bob's Gaussian signal ``s``, ``P(sign u = sign s) = 1/2 + arcsin(rho) / pi``
with ``rho = corr(u, s)`` (Sheppard's formula), so Bob's accuracy has a closed
form next to the simulation:

- S1: ``s = 1'b``, as is ``1/2 + arcsin(sign(v) rho) / pi``; re-fitted
  ``1/2 + arcsin(sign(v_B) rho) / pi`` with Bob's fitted ``v_B`` (``|rho|``
  whenever his fit finds the right sign);
- S2: Bob's label flips Alice's with probability ``(1 - beta) / 2``, so
  ``1/2 + beta arcsin(sign(v) rho_A) / pi`` with ``rho_A = corr(u, 1'a)``.

Pure NumPy, float64.
"""

from __future__ import annotations

import math

import numpy as np

from transferlab._validation import check_int, check_scalar, check_seed


def toy_inputs(n: int, k: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of ``x = [a; b]``, ``(n, 2k)``, with ``corr(a_i, b_i) = alpha``."""
    alpha = check_scalar(alpha, "alpha", float, min_val=-1.0, max_val=1.0)  # a correlation
    a = rng.standard_normal((n, k))
    b = alpha * a + math.sqrt(1.0 - alpha**2) * rng.standard_normal((n, k))
    return np.concatenate([a, b], axis=1)


def toy_labels(x: np.ndarray, scenario: str, beta: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Alice's and Bob's labels in ``{-1, +1}`` for scenario ``"S1"`` or ``"S2"``."""
    k = x.shape[1] // 2
    y_a = np.where(x[:, :k].sum(axis=1) >= 0, 1.0, -1.0)
    if scenario == "S1":
        return y_a, np.where(x[:, k:].sum(axis=1) >= 0, 1.0, -1.0)
    if scenario == "S2":
        beta = check_scalar(beta, "beta", float, min_val=0.0, max_val=1.0)  # the task correlation
        keep = rng.random(x.shape[0]) < (1.0 + beta) / 2.0
        return y_a, np.where(keep, y_a, -y_a)
    raise ValueError(f"scenario must be 'S1' or 'S2'; got {scenario!r}")


def train_alice(
    x: np.ndarray, y: np.ndarray, *, decay: float, steps: int = 2000, lr: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Full-batch gradient descent on ``mean log(1 + exp(-y v tanh(w'x))) + decay/2 (|w|^2 + v^2)``.

    Returns ``(w, v)``. Starts from a small seeded ``w`` and ``v = 0.1``.
    """
    decay = check_scalar(decay, "decay", float, min_val=0.0)
    rng = np.random.default_rng(check_seed(seed))
    w = 0.01 * rng.standard_normal(x.shape[1])
    v = 0.1
    n = x.shape[0]
    for _ in range(check_int(steps, "steps")):
        h = np.tanh(x @ w)
        margin = y * v * h
        g = -y * _sigmoid(-margin) / n  # d loss / d f per sample
        grad_v = float(g @ h) + decay * v
        grad_w = x.T @ (g * v * (1.0 - h**2)) + decay * w
        v -= lr * grad_v
        w -= lr * grad_w
    return w, v


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # overflow-free


def toy_correlations(w: np.ndarray, alpha: float) -> tuple[float, float]:
    """Population ``corr(w'x, 1'a)`` and ``corr(w'x, 1'b)`` under ``Cov(x) = [[I, aI], [aI, I]]``."""
    k = w.shape[0] // 2
    wa, wb = w[:k].sum(), w[k:].sum()
    var_u = float(w[:k] @ w[:k] + w[k:] @ w[k:] + 2.0 * alpha * (w[:k] @ w[k:]))
    if not var_u > 1e-300:
        raise ValueError("Alice's weights collapsed to zero (weight decay too strong): no correlation to report")
    scale = math.sqrt(var_u * k)
    return float((wa + alpha * wb) / scale), float((alpha * wa + wb) / scale)


def closed_form_accuracy(rho: float, *, beta: float = 1.0) -> float:
    """``1/2 + beta arcsin(rho) / pi``: agreement of two Gaussian signs, a flip with probability ``(1-beta)/2``."""
    return 0.5 + beta * math.asin(max(-1.0, min(1.0, rho))) / math.pi


def run_toy(
    *,
    k: int,
    alphas,
    betas,
    decays,
    n_train: int,
    n_test: int,
    steps: int,
    seed: int,
) -> list[dict]:
    """One row per (scenario, alpha or beta, decay): Alice's ``w*`` and Bob's accuracies.

    Rows carry ``w_a`` and ``w_b`` (the mean weight on ``a`` and on ``b``), their
    ratio ``w_b / w_a`` (0 for ``w* ~ [1, 0]``, ``+-1`` for ``[1, +-1]``), Alice's
    test accuracy, and Bob's accuracy with the network as is and with ``v``
    re-fitted, empirical and closed form.
    """
    rows = []
    settings = [("S1", float(a), 1.0) for a in alphas] + [("S2", 0.0, float(b)) for b in betas]
    for i, (scenario, alpha, beta) in enumerate(settings):
        for decay in decays:
            rng = np.random.default_rng([check_seed(seed), i])
            x_train = toy_inputs(n_train, k, alpha, rng)
            ya_train, yb_train = toy_labels(x_train, scenario, beta, rng)
            x_test = toy_inputs(n_test, k, alpha, rng)
            ya_test, yb_test = toy_labels(x_test, scenario, beta, rng)
            w, v = train_alice(x_train, ya_train, decay=float(decay), steps=steps, seed=seed)
            u = x_test @ w
            sign_v = 1.0 if v >= 0 else -1.0
            pred = sign_v * np.where(u >= 0, 1.0, -1.0)
            as_is = float(np.mean(pred == yb_test))
            # Re-fitting v on Bob's train labels with w fixed: only the sign of v changes the
            # decisions, and the 1-D logistic loss is convex with slope -mean(y_B tanh(u)) / 2
            # at v = 0, so the fitted v has the sign of mean(y_B tanh(u)).
            v_bob = 1.0 if float(yb_train @ np.tanh(x_train @ w)) >= 0 else -1.0
            refit = float(np.mean(v_bob * np.where(u >= 0, 1.0, -1.0) == yb_test))
            rho_a, rho_b = toy_correlations(w, alpha)
            if scenario == "S1":
                cf_as_is, cf_refit = closed_form_accuracy(sign_v * rho_b), closed_form_accuracy(v_bob * rho_b)
            else:
                cf_as_is = closed_form_accuracy(sign_v * rho_a, beta=beta)
                cf_refit = closed_form_accuracy(v_bob * rho_a, beta=beta)
            k_ = w.shape[0] // 2
            w_a, w_b = float(w[:k_].mean()), float(w[k_:].mean())
            rows.append(
                {
                    "scenario": scenario,
                    "alpha": alpha,
                    "beta": beta,
                    "decay": float(decay),
                    "seed": int(seed),
                    "w_a": w_a,
                    "w_b": w_b,
                    "w_ratio": w_b / w_a if w_a != 0 else float("nan"),
                    "alice_accuracy": float(np.mean(sign_v * np.where(u >= 0, 1.0, -1.0) == ya_test)),
                    "bob_as_is": as_is,
                    "bob_refit": refit,
                    "closed_form_as_is": cf_as_is,
                    "closed_form_refit": cf_refit,
                    "rho": rho_b if scenario == "S1" else rho_a,
                    "n_test": int(n_test),
                }
            )
    return rows
