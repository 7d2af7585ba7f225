"""Result tables and figures."""

from transferlab.report._figures import plot_metric_bars, plot_score_grid, plot_score_vs_accuracy, save_figure
from transferlab.report._ranking_figures import plot_agreement, plot_ranking
from transferlab.report._ranking_markdown import ranking_markdown
from transferlab.report._select_markdown import select_markdown
from transferlab.report._table_report import write_table_report
from transferlab.report._tables import write_csv

__all__ = [
    "plot_score_vs_accuracy",
    "plot_score_grid",
    "plot_metric_bars",
    "save_figure",
    "write_csv",
    "write_table_report",
    "plot_ranking",
    "plot_agreement",
    "ranking_markdown",
    "select_markdown",
]
