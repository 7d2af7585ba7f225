"""Result tables and figures."""

from transferlab.report._figures import plot_metric_bars, plot_score_grid, plot_score_vs_accuracy, save_figure
from transferlab.report._tables import write_csv

__all__ = ["plot_score_vs_accuracy", "plot_score_grid", "plot_metric_bars", "save_figure", "write_csv"]
