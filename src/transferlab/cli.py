"""The ``transferlab`` command line: a thin layer that parses and calls the library.

Bad input (an unknown score, a malformed task spec, a corrupt file) is reported
as one red line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Predict, measure and explain transfer learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Built-in data sources.", no_args_is_help=True)
zoo_app = typer.Typer(help="Model zoos: build and inspect.", no_args_is_help=True)
app.add_typer(data_app, name="data")
study_app = typer.Typer(help="The studies: each from one command, at three sizes (presets).", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")
app.add_typer(study_app, name="study")

def _console(*, stderr: bool = False, quiet: bool = False) -> Console:
    # Wide when piped or captured, so that tables never cut model names.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160
    return Console(file=stream, width=width, quiet=quiet)


def _user_errors(fn):
    """Turn the library's input errors into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as exc:
            _console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


def _split_names(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _print_rows(title: str, rows, columns) -> None:
    table = Table(title=title, header_style="bold")
    table.add_column("#", justify="right")
    for name in columns:
        table.add_column(name, justify="left" if name in ("model", "arch", "source") else "right")
    for i, row in enumerate(rows, 1):
        table.add_row(str(i), *(_fmt(row[c]) for c in columns))
    _console().print(table)


@app.command()
@_user_errors
def demo(
    preset: str = typer.Option("small", help="tiny (seconds, for CI) or small (minutes on a laptop)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder [default: transferlab-out/demo-PRESET]."),
    device: str = typer.Option("cpu", help="Torch device: cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Rank the built-in zoo for a target task with LogME and LEEP, then check by fine-tuning."""
    from transferlab.studies._demo import run_demo

    result = run_demo(preset, out_dir=out_dir, device=device, progress=not quiet,
                      console=_console(stderr=True, quiet=quiet))
    out = _console()
    columns = ["model", "arch", "source", "source_accuracy", *result.ranking.scores, "fine_tuned_accuracy"]
    _print_rows(f"Zoo ranked for {result.target} (sorted by {result.ranking.scores[0]})", result.rows, columns)
    best = max(result.rows, key=lambda r: r["fine_tuned_accuracy"])
    out.print(f"best model after fine-tuning: [bold]{best['model']}[/] ({best['fine_tuned_accuracy']:.4f})")
    for score in result.ranking.scores:
        tau = result.taus[score]
        tau_text = "undefined (constant scores or accuracies)" if tau is None else f"{tau:+.3f}"
        out.print(
            f"{score:>6}: weighted Kendall tau = {tau_text}, "
            f"trials to the best model = {result.trials[score]} of {len(result.rows)}"
        )
    out.print(f"wrote {result.csv_path} and {result.figure_path}")


@app.command()
@_user_errors
def rank(
    target: Optional[str] = typer.Option(None, help="Target task spec for a zoo ranking, e.g. glyphs:greek or fashion."),
    models: Optional[str] = typer.Option(
        None, help="Your models instead of a zoo: SPEC[,SPEC...] with SPEC hf:<id or folder>, timm:<name>, "
        "torchvision:<name> or file:<path>.safetensors.",
    ),
    data: Optional[Path] = typer.Option(
        None, help="Your data for --models: an image folder (one subfolder per class), a .csv of path,label or an .npz."
    ),
    zoo: str = typer.Option("builtin", help="Zoo recipe: a built-in name or a .toml path."),
    preset: str = typer.Option("small", help="Zoo preset."),
    scores: Optional[str] = typer.Option(
        None,
        help="Comma-separated score names, per-model or pool-level (ncti, etran) "
        "[default: every per-model score the inputs allow].",
    ),
    per_class: int = typer.Option(100, help="Zoo ranking: score on at most this many target samples per class."),
    shots: Optional[int] = typer.Option(None, help="--data: score on this many training images per class (seeded)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="--data: leave unreadable images out instead of stopping."),
    source_per_class: int = typer.Option(100, help="At most this many source images per class for source features."),
    seed: int = typer.Option(0, help="Seed of the split, the shots, the gradient projection and seeded scores."),
    device: str = typer.Option("cpu", help="Torch device: cpu or cuda."),
    out_dir: Optional[Path] = typer.Option(
        None, "--out", help="Output folder for ranking.csv and ranking.json [default: transferlab-out/rank-TARGET]."
    ),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write the ranking to this CSV file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Rank a zoo for a target task (--target), or your models for your data (--models, --data); no fine-tuning."""
    if (models is None) != (data is None):
        raise ValueError("--models and --data go together (or use --target for a zoo ranking)")
    if models is not None:
        if target is not None:
            raise ValueError("give either --target (a zoo ranking) or --models and --data, not both")
        return _rank_models(models, data, scores, shots, skip_bad, seed, device, out_dir, csv_path, quiet)
    if target is None:
        raise ValueError("give --target (a zoo ranking) or --models and --data (your own models and data)")
    from transferlab.data._sized import load_sized
    from transferlab.studies._rank import rank_zoo, split_score_names
    from transferlab.zoo._build import build_zoo

    per_model, pooled = split_score_names(None if scores is None else _split_names(scores))
    if per_class < 2:
        raise ValueError(f"--per-class must be >= 2 (scores need two samples per class); got {per_class}")
    built = build_zoo(zoo, preset, device=device, progress=not quiet, console=_console(stderr=True, quiet=quiet))
    task = load_sized(target, train_per_class=per_class)
    ranking = rank_zoo(
        built, task, (*per_model, *pooled), device=device, progress=not quiet,
        source_per_class=source_per_class, seed=seed,
    )
    _print_wide_rows(f"{built.recipe.name} zoo ranked for {task.name} (sorted by {ranking.columns[0]})",
                     ranking.rows, ["model", "arch", "source", "source_accuracy"], list(ranking.columns))
    out_dir = out_dir if out_dir is not None else Path("transferlab-out") / f"rank-{_slug(target)}"
    written = _write_ranking(ranking, out_dir, extra={"zoo": built.recipe.name, "preset": preset,
                                                        "target_spec": target, "per_class": per_class, "seed": seed})
    _finish_ranking(ranking, written, csv_path)


def _rank_models(models, data, scores, shots, skip_bad, seed, device, out_dir, csv_path, quiet) -> None:
    import warnings

    from transferlab.data._external import load_data
    from transferlab.models._hub import parse_spec
    from transferlab.studies._rank_models import rank_models

    specs = _split_names(models)
    for spec in specs:  # a malformed spec fails before any image is read
        parse_spec(spec)
    with warnings.catch_warnings():  # the skipped files are reported below, in one line
        warnings.simplefilter("ignore")
        images = load_data(data, seed=seed, strict=not skip_bad)
    if images.skipped:
        shown = ", ".join(images.skipped[:5]) + (" ..." if len(images.skipped) > 5 else "")
        _console(stderr=True).print(f"[yellow]skipped {len(images.skipped)} unreadable image(s):[/] {shown}",
                                    highlight=False, soft_wrap=True)
    ranking = rank_models(specs, images, None if scores is None else _split_names(scores), shots=shots,
                          seed=seed, device=device, progress=not quiet)
    _print_wide_rows(f"models ranked for {ranking.target} (sorted by {ranking.columns[0]})", ranking.rows,
                     [c for c in ("model", "has_head", "input_size", "feature_dim") if c in ranking.rows[0]],
                     list(ranking.columns))
    out_dir = out_dir if out_dir is not None else Path("transferlab-out") / f"rank-{_slug(Path(data).stem)}"
    written = _write_ranking(ranking, out_dir, extra={"models": _split_names(models), "data": str(data),
                                                        "shots": shots, "seed": seed})
    _finish_ranking(ranking, written, csv_path)


def _finish_ranking(ranking, written: list, csv_path) -> None:
    if csv_path is not None:
        from transferlab.report._tables import write_csv

        written.append(write_csv(csv_path, list(ranking.rows)))
    _console().print("wrote " + ", ".join(str(p) for p in written), highlight=False, soft_wrap=True)


def _print_wide_rows(title: str, rows, info: list[str], scores: list[str]) -> None:
    """Print ``rows`` as one table, or as several when the score columns do not fit the width.

    Every table repeats the rank and the model name; the first one also has the
    other ``info`` columns. Cells are never cut or wrapped.
    """
    console = _console()
    width = console.width

    def column_width(name: str) -> int:  # content plus Rich's padding and border
        return max(len(name), *(len(_fmt(row[name])) for row in rows)) + 3

    fixed = len(str(len(rows))) + 4 + column_width("model")  # the '#' column, the table's right border, the model
    chunks, current, used = [], [], fixed + sum(column_width(c) for c in info if c != "model")
    for name in scores:
        if current and used + column_width(name) > width:
            chunks.append(current)
            current, used = [], fixed
        current.append(name)
        used += column_width(name)
    chunks.append(current)
    for i, chunk in enumerate(chunks):
        columns = (info if i == 0 else ["model"]) + chunk
        table = Table(title=title if i == 0 else None, header_style="bold")
        table.add_column("#", justify="right", no_wrap=True)
        for name in columns:
            table.add_column(name, justify="left" if name in ("model", "arch", "source") else "right", no_wrap=True)
        for rank, row in enumerate(rows, 1):
            table.add_row(str(rank), *(_fmt(row[c]) for c in columns))
        console.print(table)


def _slug(text: str) -> str:
    """A file-name-safe form of a task spec (``glyphs:greek`` -> ``glyphs-greek``)."""
    import re

    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-") or "target"


def _write_ranking(ranking, out_dir: Path, *, extra: dict) -> list[Path]:
    """Write ``ranking.csv`` and ``ranking.json`` (with the run's settings) into ``out_dir``."""
    import json

    from transferlab._atomic import atomic_write_bytes
    from transferlab.report._tables import write_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_file = write_csv(out_dir / "ranking.csv", list(ranking.rows))
    payload = {**extra, **ranking.to_dict()}
    json_file = atomic_write_bytes(out_dir / "ranking.json", (json.dumps(payload, indent=2) + "\n").encode())
    return [Path(csv_file), Path(json_file)]


@data_app.command("list")
@_user_errors
def data_list() -> None:
    """Show each built-in source and whether its files are present."""
    from transferlab.data._sources import list_sources

    table = Table(title="Built-in sources", header_style="bold")
    for column in ("source", "variants", "available", "location", "description"):
        table.add_column(column)
    for info in list_sources():
        table.add_row(
            info.name,
            ", ".join(info.variants) or "-",
            "[green]yes[/]" if info.available else "[red]no[/]",
            info.location,
            info.description,
        )
    _console().print(table)


@data_app.command("download")
@_user_errors
def data_download(
    source: str = typer.Argument(..., help="The source to download: fashion."),
    force: bool = typer.Option(False, help="Download again even if verified files are present."),
) -> None:
    """Download a source's files (SHA-256 verified) into $TRANSFERLAB_DATA."""
    from transferlab.data._fashion import download_fashion

    if source != "fashion":
        raise ValueError(f"only 'fashion' is downloaded; the other sources are built in or generated (got {source!r})")
    folder = download_fashion(force=force)
    _console().print(f"Fashion-MNIST verified in {folder}")


@zoo_app.command("build")
@_user_errors
def zoo_build(
    recipe: str = typer.Argument("builtin", help="A built-in recipe name or a .toml path."),
    preset: str = typer.Option("small", help="Recipe preset."),
    device: str = typer.Option("cpu", help="Torch device: cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train every member of a zoo recipe that is not cached yet."""
    from transferlab.zoo._build import build_zoo

    built = build_zoo(recipe, preset, device=device, progress=not quiet, console=_console(stderr=True, quiet=quiet))
    _console().print(f"zoo {built.recipe.name}/{preset}: {len(built)} members in {built.root}")


@zoo_app.command("list")
@_user_errors
def zoo_list(
    recipe: str = typer.Argument("builtin", help="A built-in recipe name or a .toml path."),
    preset: str = typer.Option("small", help="Recipe preset."),
) -> None:
    """Show the members of a zoo recipe, and the source accuracy of those built."""
    from transferlab.zoo._build import zoo_members

    rows = zoo_members(recipe, preset)
    table = Table(title=f"zoo {recipe} ({preset})", header_style="bold")
    for column in ("member", "role", "arch", "source", "built", "source accuracy"):
        table.add_column(column)
    for row in rows:
        acc = row["source_accuracy"]
        table.add_row(row["name"], row.get("role", "single"), row["arch"], row["source"],
                      "yes" if row["built"] else "no", "-" if acc is None else f"{acc:.4f}")
    _console().print(table)


_EXECUTOR = typer.Option("inprocess", help="Where jobs run: inprocess, process or ray.")
_WORKERS = typer.Option(None, help="Parallel jobs for the process executor.")
_PRESETS = typer.Option(None, help="A TOML file of presets instead of the built-in ones.")
_DEVICE = typer.Option("cpu", help="Torch device: cpu or cuda.")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def _run_study(run, preset, *, presets, out_dir, executor, workers, device, quiet):
    """Call a study's runner with the options every ``study`` command shares."""
    return run(preset, path=presets, out_dir=out_dir, executor=executor, max_workers=workers, device=device,
               progress=not quiet, console=_console(stderr=True, quiet=quiet))


@study_app.command("selection")
@_user_errors
def study_selection(
    preset: str = typer.Option("small", help="tiny (tests, CI), small (2-core CPU, ~30 min from empty) or full (GPU)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder [default: transferlab-out/selection-PRESET]."),
    executor: str = typer.Option("inprocess", help="Where jobs run: inprocess, process or ray."),
    workers: Optional[int] = typer.Option(None, help="Parallel jobs for the process executor."),
    presets: Optional[Path] = typer.Option(None, help="A TOML file of presets instead of the built-in ones."),
    device: str = typer.Option("cpu", help="Torch device: cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The model-selection benchmark: every score ranks the zoo, fine-tuning checks it."""
    from transferlab.studies._selection import run_selection

    result = _run_study(run_selection, preset, presets=presets, out_dir=out_dir, executor=executor, workers=workers,
                        device=device, quiet=quiet)
    out = _console()
    rows = [r for r in result.summary if r["truth"] == "best"]
    for regime in result.config.regimes:
        table = Table(title=f"selection benchmark ({result.config.preset}), {regime}: means over targets [95% CI]",
                      header_style="bold")
        for column in ("score", "weighted tau", "top-1 gain", "top-3 gain", "trials to best"):
            table.add_column(column, justify="left" if column == "score" else "right", no_wrap=True)
        regime_rows = sorted((r for r in rows if r["regime"] == regime),
                             key=lambda r: -(r.get("weighted_kendall") if r.get("weighted_kendall") is not None else -9))
        for r in regime_rows:
            table.add_row(r["score"], _ci(r, "weighted_kendall"), _ci(r, "top1_gain"), _ci(r, "top3_gain"),
                          _ci(r, "trials_to_best", signed=False))
        out.print(table)
    out.print(f"wrote {result.files['this report']} and {len(result.files) - 1} tables and figures in {result.out_dir}")


def _print_claims(result, title: str) -> None:
    table = Table(title=title, header_style="bold")
    for column in ("claim", "setting", "supported", "numbers"):
        table.add_column(column, overflow="fold")
    for c in result.claims:
        table.add_row(c["claim"], c["setting"], "yes" if c["supported"] else "[red]no[/]", c["numbers"])
    out = _console()
    out.print(table)
    out.print(f"wrote {result.files['report']} and {len(result.files) - 1} tables and figures in {result.out_dir}")


@study_app.command("correlation")
@_user_errors
def study_correlation(
    preset: str = typer.Option("small", help="tiny (tests, CI), small (2-core CPU, ~10 min) or full (GPU)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder [default: transferlab-out/correlation-PRESET]."),
    executor: str = _EXECUTOR,
    workers: Optional[int] = _WORKERS,
    presets: Optional[Path] = _PRESETS,
    device: str = _DEVICE,
    quiet: bool = _QUIET,
) -> None:
    """The correlation study: Alice pre-trains, Bob reuses; task and feature correlation are knobs."""
    from transferlab.studies._correlation import run_correlation

    result = _run_study(run_correlation, preset, presets=presets, out_dir=out_dir, executor=executor, workers=workers,
                        device=device, quiet=quiet)
    _print_claims(result, f"correlation study ({result.config.preset}): the paper's claims")


@study_app.command("what-transfers")
@_user_errors
def study_what_transfers(
    preset: str = typer.Option("small", help="tiny (tests, CI), small (2-core CPU) or full (GPU)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder [default: transferlab-out/what-transfers-PRESET]."),
    executor: str = _EXECUTOR,
    workers: Optional[int] = _WORKERS,
    presets: Optional[Path] = _PRESETS,
    device: str = _DEVICE,
    quiet: bool = _QUIET,
) -> None:
    """What is being transferred: P-T against RI-T by accuracy, agreement, CKA, distance, barrier, criticality."""
    from transferlab.studies._what_transfers import run_what_transfers

    result = _run_study(run_what_transfers, preset, presets=presets, out_dir=out_dir, executor=executor, workers=workers,
                        device=device, quiet=quiet)
    _print_claims(result, f"what-transfers study ({result.config.preset}): DESIGN's expected shape")


@study_app.command("bound")
@_user_errors
def study_bound(
    preset: str = typer.Option("small", help="tiny (tests, CI), small (2-core CPU) or full (GPU)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder [default: transferlab-out/bound-PRESET]."),
    executor: str = _EXECUTOR,
    workers: Optional[int] = _WORKERS,
    presets: Optional[Path] = _PRESETS,
    device: str = _DEVICE,
    quiet: bool = _QUIET,
) -> None:
    """The transfer bound: bound each (model, target)'s linear-probe loss from the model's source task."""
    from transferlab.studies._bound import run_bound

    result = _run_study(run_bound, preset, presets=presets, out_dir=out_dir, executor=executor, workers=workers,
                        device=device, quiet=quiet)
    table = Table(title=f"transfer bound ({result.config.preset}): across {len(result.pairs)} pairs [95% CI]",
                  header_style="bold")
    for column in ("measure", "of", "estimate"):
        table.add_column(column, justify="right" if column == "estimate" else "left")
    for r in result.summary:
        table.add_row(r["measure"], r["of"], f"{r['estimate']:.3f} [{r['low']:.3f}, {r['high']:.3f}]")
    _console().print(table)
    _print_claims(result, f"transfer bound ({result.config.preset}): the paper's claims")


def _ci(row: dict, metric: str, *, signed: bool = True) -> str:
    est = row.get(metric)
    if est is None:
        return "n/a"
    spec = "+.3f" if signed else ".2f"
    return f"{est:{spec}} [{row[metric + '_low']:{spec}}, {row[metric + '_high']:{spec}}]"


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
