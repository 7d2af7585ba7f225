"""The figures and the Markdown report of a ranking decision, read from a plain dict."""

from __future__ import annotations

import copy
import doctest
import re
import struct

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba

from transferlab.report import _ranking_input, _ranking_markdown, plot_agreement, plot_ranking, ranking_markdown
from transferlab.report._ranking_figures import _agreement_figure, _ranking_figure
from transferlab.report._ranking_input import fmt_value

PIPE_MODEL = "convnet|digits"


def _ranking() -> dict:
    """3 models, 4 columns (one per group, a pool score), one None value, logme bootstrapped."""
    return {
        "target": "glyphs:greek",
        "scores": ["logme", "knn", "parameters"],
        "pool_scores": ["ncti"],
        "groups": {"logme": "score", "ncti": "score", "knn": "baseline", "random": "baseline",
                   "parameters": "prior"},
        "rows": [
            {"model": "resnet-digits", "arch": "resnet", "logme": -0.456213, "knn": 0.81,
             "parameters": 11689512, "ncti": 0.3, "consensus_rank": 1.0},
            {"model": PIPE_MODEL, "arch": "convnet", "logme": -0.4567, "knn": None,
             "parameters": 52000, "ncti": 0.1, "consensus_rank": 2.5},
            {"model": "vit-tiny", "arch": "vit", "logme": -0.4573, "knn": 0.7,
             "parameters": 5_700_000, "ncti": -0.2, "consensus_rank": 2.5},
        ],
        "uncertainty": {"logme": {"low": [-0.47, -0.4712, -0.48], "high": [-0.44, -0.443, -0.445],
                                  "p_best": [0.71, 0.25, 0.04], "within_noise": [False, True, False],
                                  "rank": [1, 2, 3]}},
        "ranks": {"logme": [1, 2, 3], "knn": [1, None, 2], "parameters": [1, 3, 2], "ncti": [1, 2, 3]},
        "bootstrap": {"resamples": 100, "seed": 0, "level": 0.95,
                      "skipped": {"knn": "too costly to resample", "parameters": "target-blind: no uncertainty"}},
        "agreement": {"scores": ["logme", "knn", "ncti"],
                      "tau": [[1.0, 0.4, 1.0], [0.4, 1.0, None], [1.0, None, 1.0]]},
        "recommendation": {"text": "Recommended: resnet-digits (first under 2 of 2 scores; P(best) 0.71 under "
                                   "logme). convnet|digits is within noise.",
                           "model": "resnet-digits", "within_noise": [PIPE_MODEL], "decided": True,
                           "rule": "Recommend the model first under most scores unless another is within noise."},
        "seconds": {"features": 1.2, "logme": 0.1, "bootstrap": 0.8},
    }


def _one_model() -> dict:
    return {
        "target": "t", "scores": ["logme"], "pool_scores": [], "groups": {"logme": "score"},
        "rows": [{"model": "only", "logme": 1.5, "consensus_rank": 1.0}],
        "uncertainty": {"logme": {"low": [1.0], "high": [2.0], "p_best": [1.0], "within_noise": [False],
                                  "rank": [1]}},
        "ranks": {"logme": [1]}, "bootstrap": {"resamples": 10, "seed": 3, "level": 0.95, "skipped": {}},
        "agreement": {"scores": ["logme"], "tau": [[None]]},
        "recommendation": {"text": "Recommended: only.", "model": "only", "within_noise": [], "decided": True,
                           "rule": "r"},
        "seconds": {},
    }


def _no_uncertainty() -> dict:
    d = _ranking()
    d["uncertainty"] = {}
    d["bootstrap"] = {"resamples": 0, "seed": 0, "level": 0.95, "skipped": {}}
    return d


def _many_models(n: int) -> dict:
    d = _one_model()
    d["rows"] = [{"model": f"model-{i:02d}-" + "x" * (i % 7) * 10, "logme": float(-i), "consensus_rank": i + 1.0}
                 for i in range(n)]
    d["uncertainty"] = {}
    d["ranks"] = {"logme": list(range(1, n + 1))}
    return d


def _png_size(path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk (PNG spec, section 5.2 and 11.2.2)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _visible(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


# ---------------------------------------------------------------- plot_ranking


@pytest.mark.parametrize("make", [_ranking, _one_model, _no_uncertainty], ids=["three", "one-model", "no-bootstrap"])
def test_plot_ranking_writes_a_png(tmp_path, make):
    out = plot_ranking(make(), tmp_path / "sub" / "ranking.png")
    assert out == tmp_path / "sub" / "ranking.png"
    width, height = _png_size(out)
    assert 300 <= width <= 5000 and 150 <= height <= 5000
    assert out.stat().st_size > 5_000
    assert [p.name for p in out.parent.iterdir()] == ["ranking.png"]  # no temporary file left


def test_ranking_panels_follow_groups_then_asked_order():
    fig = _ranking_figure(_ranking())
    titles = [ax.get_title() for ax in _visible(fig)]
    # asked: scores logme, knn, parameters; pool ncti -> priors, baselines, then scores in asked order
    assert titles == ["parameters (prior)", "knn (baseline)", "logme (score)", "ncti (score)"]
    plt.close(fig)


def test_ranking_models_run_down_in_row_order_best_on_top():
    d = _ranking()
    fig = _ranking_figure(d)
    ax = _visible(fig)[0]
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    assert [name for _, name in ticks] == [r["model"] for r in d["rows"]]
    plt.close(fig)


def test_ranking_intervals_pbest_na_and_highlights():
    d = _ranking()
    fig = _ranking_figure(d)
    panels = {ax.get_title(): ax for ax in _visible(fig)}
    logme = panels["logme (score)"]
    # one horizontal bar per model, spanning exactly [low, high], at the model's height (top = first row)
    bars = [c for c in logme.collections if isinstance(c, LineCollection)]
    segments = sorted((seg[0][1], seg[0][0], seg[1][0]) for c in bars for seg in c.get_segments())
    unc = d["uncertainty"]["logme"]
    expected = sorted((2 - i, unc["low"][i], unc["high"][i]) for i in range(3))
    np.testing.assert_allclose(segments, expected)
    assert sorted(t.get_text() for t in logme.texts) == ["0.04", "0.25", "0.71"]
    # no bootstrap for the other columns: no bars, no P(best)
    for title in ("parameters (prior)", "knn (baseline)", "ncti (score)"):
        assert not [c for c in panels[title].collections if isinstance(c, LineCollection)]
        assert not [t for t in panels[title].texts if t.get_text() != "n/a"]
    # knn has no value for the second model: "n/a" in place of a dot, at its height
    (na,) = panels["knn (baseline)"].texts
    assert na.get_text() == "n/a" and na.get_position()[1] == 1
    dots = {line.get_ydata()[0]: line for line in logme.lines}
    assert to_rgba(dots[2].get_color()) == to_rgba("tab:red")  # recommended
    assert to_rgba(dots[1].get_color()) == to_rgba("tab:orange")  # within noise of it
    assert to_rgba(dots[1].get_markerfacecolor()) == to_rgba("white")  # hollow: within noise under logme
    assert to_rgba(dots[0].get_markerfacecolor()) == to_rgba(dots[0].get_color())
    plt.close(fig)


def test_ranking_figure_grows_with_the_models_and_shortens_long_names(tmp_path):
    small = _png_size(plot_ranking(_many_models(3), tmp_path / "small.png"))
    large = _png_size(plot_ranking(_many_models(40), tmp_path / "large.png"))
    assert large[1] > 3 * small[1]
    d = _many_models(8)
    d["rows"][0]["model"] = "a" * 200
    fig = _ranking_figure(d)
    labels = [t.get_text() for t in _visible(fig)[0].get_yticklabels()]
    assert max(map(len, labels)) <= 32 and any(label.endswith("\u2026") for label in labels)
    plt.close(fig)


def test_ranking_figure_wraps_many_panels():
    d = _one_model()
    d["scores"] = [f"s{i}" for i in range(6)]
    d["groups"] = {s: "score" for s in d["scores"]}
    d["rows"][0].update({s: float(i) for i, s in enumerate(d["scores"])})
    d["uncertainty"], d["ranks"] = {}, {}
    fig = _ranking_figure(d)
    assert [ax.get_title() for ax in _visible(fig)] == [f"s{i} (score)" for i in range(6)]
    assert len(fig.axes) == 8  # two rows of four, two left empty
    plt.close(fig)


# ---------------------------------------------------------------- plot_agreement


@pytest.mark.parametrize("make", [_ranking, _one_model], ids=["3x3", "1x1"])
def test_plot_agreement_writes_a_png(tmp_path, make):
    out = plot_agreement(make(), tmp_path / "agreement.png")
    width, height = _png_size(out)
    assert 200 <= width <= 3000 and 200 <= height <= 3000
    assert out.stat().st_size > 3_000


def test_agreement_cells_scale_and_na():
    fig = _agreement_figure(_ranking())
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {(0, 0): "+1.00", (0, 1): "+0.40", (0, 2): "+1.00",
                     (1, 0): "+0.40", (1, 1): "+1.00", (1, 2): "n/a",
                     (2, 0): "+1.00", (2, 1): "n/a", (2, 2): "+1.00"}
    (image,) = ax.images
    assert image.get_clim() == (-1.0, 1.0)
    assert image.get_array().mask.tolist() == [[False] * 3, [False, False, True], [False, True, False]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["logme", "knn", "ncti"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["logme", "knn", "ncti"]
    plt.close(fig)


def test_agreement_nan_cell_reads_as_na(tmp_path):
    d = _ranking()
    d["agreement"]["tau"][1][2] = d["agreement"]["tau"][2][1] = float("nan")
    fig = _agreement_figure(d)
    assert sum(t.get_text() == "n/a" for t in fig.axes[0].texts) == 2
    plt.close(fig)
    assert "| knn | +0.40 | +1.00 | n/a |" in ranking_markdown(d)


def test_agreement_needs_scores(tmp_path):
    d = _ranking()
    d["agreement"] = {"scores": [], "tau": []}
    with pytest.raises(ValueError, match="no agreement to plot"):
        plot_agreement(d, tmp_path / "a.png")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- failed writes


@pytest.mark.parametrize("plot", [plot_ranking, plot_agreement])
def test_unwritable_path_raises_and_leaves_no_partial_file(tmp_path, plot):
    figures = plt.get_fignums()
    (tmp_path / "taken.png").mkdir()  # the rename over a directory fails after the figure is written
    with pytest.raises(IsADirectoryError, match="taken.png"):
        plot(_ranking(), tmp_path / "taken.png")
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]
    assert not list((tmp_path / "taken.png").iterdir())
    (tmp_path / "file").write_text("x")  # a file where the folder should be
    with pytest.raises(OSError, match="file"):
        plot(_ranking(), tmp_path / "file" / "out.png")
    assert (tmp_path / "file").read_text() == "x"
    assert plt.get_fignums() == figures  # the figures were closed all the same


# ---------------------------------------------------------------- ranking_markdown


def _tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown_leads_with_the_recommendation_and_the_rule():
    d = _ranking()
    text = ranking_markdown(d)
    lines = text.splitlines()
    assert lines[0] == "# Ranking for `glyphs:greek`"
    first = next(line for line in lines[1:] if line.strip())
    assert first == "> **" + d["recommendation"]["text"] + "**"
    assert "**Rule.** " + d["recommendation"]["rule"] in text
    assert text.endswith("\n")


def test_markdown_tables_are_well_formed_and_escape_pipes():
    text = ranking_markdown(_ranking())
    assert "convnet\\|digits" in text
    for table in _tables(text):
        widths = {len(_cells(line)) for line in table}
        assert len(widths) == 1, table  # an unescaped | would add a cell
        for line in table[2:]:
            assert "convnet|digits" not in line.replace("\\|", "")


def test_markdown_groups_rank_value_interval_pbest():
    d = _ranking()
    text = ranking_markdown(d)
    assert text.index("### Priors") < text.index("### Baselines") < text.index("### Scores")
    tables = {tuple(_cells(t[0])): [_cells(line) for line in t[2:]] for t in _tables(text)}
    priors = tables[("model", "parameters")]
    assert priors == [["resnet-digits", "1 (11.69M)"], ["convnet\\|digits", "3 (52K)"], ["vit-tiny", "2 (5.7M)"]]
    baselines = tables[("model", "knn")]
    assert baselines == [["resnet-digits", "1 (0.81)"], ["convnet\\|digits", "n/a"], ["vit-tiny", "2 (0.7)"]]
    scores = tables[("model", "logme", "logme 95% interval", "logme P(best)", "ncti (pool)")]
    assert scores == [
        ["resnet-digits", "1 (-0.4562)", "[-0.47, -0.44]", "0.71", "1 (0.3)"],
        ["convnet\\|digits", "2 (-0.4567)", "[-0.4712, -0.443]", "0.25 (within noise)", "2 (0.1)"],
        ["vit-tiny", "3 (-0.4573)", "[-0.48, -0.445]", "0.04", "3 (-0.2)"],
    ]
    order = tables[("#", "model", "arch", "consensus rank", "decision")]
    assert order == [["1", "resnet-digits", "resnet", "1", "recommended"],
                     ["2", "convnet\\|digits", "convnet", "2.5", "within noise"],
                     ["3", "vit-tiny", "vit", "2.5", ""]]
    for column in ("logme", "knn", "parameters", "ncti"):
        assert column in text


def test_markdown_says_which_resample_the_weighted_scores_got():
    counts = _ranking()
    counts["bootstrap"]["weights"] = "counts"
    text = ranking_markdown(counts)
    assert "Bayesian" not in text and "get them as counts" in text
    counts["bootstrap"]["weights"] = "bayesian"
    assert "Bayesian-bootstrap weights" in ranking_markdown(counts)


def test_markdown_bootstrap_skipped_agreement_timings():
    text = ranking_markdown(_ranking())
    assert "stratified bootstrap over the target samples" in text
    assert "100 resamples" in text and "seed 0" in text and "95% intervals" in text
    assert "Bayesian-bootstrap weights" in text and "re-centred" in text
    assert "- `knn`: too costly to resample" in text
    assert "- `parameters`: target-blind: no uncertainty" in text
    assert "- `ncti`: not bootstrapped" in text
    tables = {tuple(_cells(t[0])): [_cells(line) for line in t[2:]] for t in _tables(text)}
    assert tables[("", "logme", "knn", "ncti")] == [
        ["logme", "+1.00", "+0.40", "+1.00"], ["knn", "+0.40", "+1.00", "n/a"], ["ncti", "+1.00", "n/a", "+1.00"]]
    assert tables[("step", "seconds")] == [["features", "1.2"], ["logme", "0.1"], ["bootstrap", "0.8"]]


def test_markdown_edge_cases():
    one = ranking_markdown(_one_model())
    assert "| only | 1 (1.5) | [1, 2] | 1.00 |" in one
    assert "|  | logme |\n|---|---:|\n| logme | n/a |" in one  # the 1x1 agreement, undefined
    assert "## Timings" not in one
    d = _one_model()
    d["seconds"] = {"features": 1.75e-05, "logme": 12.3456}
    assert "| features | < 0.001 |\n| logme | 12.35 |" in ranking_markdown(d)
    off = ranking_markdown(_no_uncertainty())
    assert "The bootstrap was off" in off
    assert "interval" not in off.split("## Uncertainty")[0].split("### Priors")[1]
    assert "P(best)" not in off.split("## Uncertainty")[0].split("### Priors")[1]
    assert "not bootstrapped" not in off


def test_markdown_undecided_has_no_recommended_row():
    d = _ranking()
    d["recommendation"].update(text="No clear winner: resnet-digits and convnet|digits are within noise.",
                               model=None, decided=False)
    text = ranking_markdown(d)
    assert "> **No clear winner" in text
    assert "recommended |" not in text


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [(-0.456213, None, "-0.4562"), (0.81, None, "0.81"), (123456.7, None, "1.235e+05"), (7, None, "7"),
     (None, None, "n/a"), (float("nan"), None, "n/a"), (11689512, "parameters", "11.69M"),
     (999_999.6, "parameters", "1M"), (1234, "parameters", "1.234K"), (950, "parameters", "950"),
     (1.5e9, "parameters", "1.5B")],
)
def test_number_format(value, column, expected):
    assert fmt_value(value, column) == expected


# ---------------------------------------------------------------- bad input


def _broken(path, value):
    d = copy.deepcopy(_ranking())
    *parents, last = path
    target = d
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("target",), KeyError, r"lacks the key\(s\) \['target'\]"),
        (("rows",), [], "rows'\\] must be a non-empty list"),
        (("rows", 0, "model"), 3, r"rows'\]\[0\] must be a dict with a str 'model'"),
        (("rows", 1, "logme"), "high", r"rows'\]\[1\]\['logme'\] must be a number or None"),
        (("groups", "knn"), "baselines", r"groups'\]\['knn'\] must be one of"),
        (("scores",), ["logme", "knn", "ncti"], "named twice"),
        (("uncertainty", "logme", "low"), [0.1], r"\['low'\] must be a list with one entry per row \(3\)"),
        (("uncertainty", "xyz"), {}, "names 'xyz', which is not a column"),
        (("ranks", "knn"), [1, 2], r"ranks'\]\['knn'\] must be a list with one entry per row"),
        (("agreement", "tau"), [[1.0, 0.4], [0.4, 1.0]], "must be a 3x3 matrix"),
        (("agreement", "tau", 0, 1), 1.5, r"must lie in \[-1, 1\]"),
        (("recommendation",), {"model": "a"}, "must be a dict with a str 'text'"),
    ],
)
def test_bad_input_raises_value_error(tmp_path, path, value, match):
    d = _broken(path, value)
    for call in (ranking_markdown, lambda d: plot_ranking(d, tmp_path / "r.png"),
                 lambda d: plot_agreement(d, tmp_path / "a.png")):
        with pytest.raises(ValueError, match=match):
            call(d)
    assert not list(tmp_path.iterdir())


def test_not_a_dict():
    with pytest.raises(ValueError, match="must be a dict"):
        ranking_markdown([("target", "t")])


def test_doctests():
    for module in (_ranking_input, _ranking_markdown):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
