"""How good a ranking is: agreement of scores with fine-tuned accuracies.

Pure NumPy/SciPy (never imports torch): per-target model-selection metrics after
Deshpande et al. (2021), their random-selection expectations, the fidelity of
score gaps and the regret of top-k selection, the stability of the verdict on the
scores across pools and setups, and bootstrap intervals over targets.
"""

from transferlab.evaluate._bootstrap import bootstrap_ci, summarise
from transferlab.evaluate._fidelity import fidelity_metrics, gap_fidelity, top_k_regret
from transferlab.evaluate._ranking import trials_to_best, weighted_kendall
from transferlab.evaluate._selection import (
    expected_relative_top_k_accuracy_random,
    expected_top_k_accuracy_random,
    expected_top_k_gain_random,
    expected_trials_to_best_random,
    pearson,
    relative_top_k_accuracy,
    selection_metrics,
    spearman,
    top_k_gain,
)
from transferlab.evaluate._stability import (
    best_scores,
    leave_out_stability,
    mean_weighted_tau,
    pool_size_curve,
    setup_stability,
    top_k_frequency,
)
from transferlab.evaluate._table import check_table, evaluate_table, summarise_over_targets

__all__ = [
    "best_scores",
    "bootstrap_ci",
    "check_table",
    "evaluate_table",
    "expected_relative_top_k_accuracy_random",
    "expected_top_k_accuracy_random",
    "expected_top_k_gain_random",
    "expected_trials_to_best_random",
    "fidelity_metrics",
    "gap_fidelity",
    "leave_out_stability",
    "mean_weighted_tau",
    "pearson",
    "pool_size_curve",
    "relative_top_k_accuracy",
    "selection_metrics",
    "setup_stability",
    "spearman",
    "summarise",
    "summarise_over_targets",
    "top_k_frequency",
    "top_k_gain",
    "top_k_regret",
    "trials_to_best",
    "weighted_kendall",
]
