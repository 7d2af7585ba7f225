"""The ``transferlab`` command line: a thin layer that parses and calls the library.

Bad input (an unknown score, a malformed task spec, a corrupt file) is reported
as one red line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from transferlab._malloc import keep_freed_memory

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
    """Turn the library's input errors, and the machine's refusals, into one line and exit code 2.

    A ``ValueError`` is a bad input; an ``OSError`` (a file that is a folder, a
    read-only or full disk, a missing file) is the machine refusing, told in
    one line naming the path and the errno's cause. Any other exception is a
    bug and keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            _check_home()
            return fn(*args, **kwargs)
        except ValueError as exc:
            _print_error(str(exc))
        except OSError as exc:
            _print_error(_describe_os_error(exc))
        raise typer.Exit(code=2)

    return wrapper


def _print_error(message: str) -> None:
    # Every message is escaped: a name or path in it may hold square brackets.
    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _under_home(path) -> bool:
    from transferlab._paths import home

    try:
        Path(path).resolve().relative_to(home().resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: what the machine refused, on which path, and the fix."""
    import errno
    import os

    from transferlab._paths import home

    if exc.errno is None:  # raised by the library with its own message
        return str(exc)
    path = exc.filename if exc.filename is not None else exc.filename2
    at = f" {os.fsdecode(path)}" if path is not None else ""
    in_home = path is not None and _under_home(path)
    writable = (f" (under TRANSFERLAB_HOME={home()}: point TRANSFERLAB_HOME at a writable folder)" if in_home
                else "")
    code = exc.errno
    if code == errno.ENOSPC:
        fix = "point TRANSFERLAB_HOME at another disk" if in_home else "free some space or write elsewhere"
        return f"no space left on device while writing{at}; {fix} and run again"
    if code == getattr(errno, "EDQUOT", None):
        return f"disk quota exceeded while writing{at}; free some space or write elsewhere and run again"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied on{at}{writable}"
    if code == errno.EROFS:
        return f"read-only file system: cannot write{at}{writable}"
    if code == errno.ENOTDIR:
        return f"{at.strip() or 'a path'}: a part of this path is a file, not a folder{writable}"
    if code == errno.EISDIR:
        return f"{at.strip() or 'a path'} is a folder, not a file"
    if code == errno.EEXIST:
        if path is not None and os.path.lexists(path) and not os.path.isdir(path):
            return f"{at.strip()} is a file where a folder is expected{writable}"
        return f"{at.strip() or 'a path'} already exists"
    if code == errno.ENOENT:
        return f"no such file or folder:{at}" if at else str(exc)
    reason = exc.strerror or os.strerror(code)
    return f"{reason}:{at}" if at else f"{reason} (errno {code})"


def _check_home() -> None:
    """Refuse a ``TRANSFERLAB_HOME`` that is (or lies inside) a file before any work."""
    from transferlab._paths import home

    root = home()
    for folder in (root, *root.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == root else f"lies inside {folder}, which is a file"
                raise ValueError(f"TRANSFERLAB_HOME={root} {where}, not a folder; "
                                 "point TRANSFERLAB_HOME at a folder (or unset it for ~/.cache/transferlab)")
            return


def _check_output(path: Optional[Path], flag: str, *, folder: bool) -> None:
    """Refuse an output path of the wrong kind before any work (a file for a folder, or the reverse)."""
    if path is None:
        return
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a folder; give a folder (it is created if missing)")
    if not folder and path.is_dir():
        raise ValueError(f"{flag} {path} is a folder, not a file; give a file path such as {path / 'ranking.csv'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path} cannot be created: {parent} is a file, not a folder")
            return


def _check_device(device: str, *, here: bool = True) -> None:
    from transferlab.models import check_device

    check_device(device, here=here, fix="--device cpu")


def _split_names(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _cell(value) -> str:
    """A table cell: the value as text, escaped (names and paths may hold square brackets)."""
    return escape(_fmt(value))


def _print_rows(title: str, rows, columns) -> None:
    table = Table(title=escape(title), header_style="bold")
    table.add_column("#", justify="right")
    for name in columns:
        table.add_column(escape(name), justify="left" if name in ("model", "arch", "source") else "right")
    for i, row in enumerate(rows, 1):
        table.add_row(str(i), *(_cell(row[c]) for c in columns))
    _console().print(table)


# --------------------------------------------------------------------------- the demo and the studies
#
# Every option of the study commands is declared once, here; each command is one row of
# _STUDY_COMMANDS (the runner, its help and a printer of its result), generated by _study_command.

#: parameter -> (type, default, flags, help); "{name}" in a help text is the command's name.
_STUDY_OPTIONS = {
    "preset": (str, "small", ("--preset",), None),  # the help is the command's
    "out_dir": (Optional[Path], None, ("--out",), "Output folder (default: transferlab-out/{name}-PRESET)."),
    "executor": (str, "auto", ("--executor",), "Where jobs run: auto (worker processes, one per CPU, for a study "
                 "whose jobs are single-threaded: selection; in-process otherwise), inprocess, process or ray."),
    "workers": (Optional[int], None, ("--workers",), "Parallel jobs for the process (or auto) executor."),
    "presets": (Optional[Path], None, ("--presets",), "A TOML file of presets instead of the built-in ones."),
    "device": (str, "cpu", ("--device",), "Torch device: cpu or cuda."),
    "quiet": (bool, False, ("--quiet", "-q"), "No progress bars."),
}
#: option -> the runner's keyword (``preset`` is positional, ``quiet`` gives ``progress`` and ``console``).
_RUNNER_KEYWORDS = {"out_dir": "out_dir", "executor": "executor", "workers": "max_workers", "presets": "path",
                    "device": "device"}


def _ci(row: dict, metric: str, *, signed: bool = True) -> str:
    est = row.get(metric)
    if est is None:
        return "n/a"
    spec = "+.3f" if signed else ".2f"
    return escape(f"{est:{spec}} [{row[metric + '_low']:{spec}}, {row[metric + '_high']:{spec}}]")


def _show_demo(result) -> None:
    out = _console()
    columns = ["model", "arch", "source", "source_accuracy", *result.ranking.scores, "fine_tuned_accuracy"]
    _print_rows(f"Zoo ranked for {result.target} (sorted by consensus rank over {', '.join(result.ranking.scores)})",
                result.rows, columns)
    best = max(result.rows, key=lambda r: r["fine_tuned_accuracy"])
    out.print(f"best model after fine-tuning: [bold]{escape(best['model'])}[/] ({best['fine_tuned_accuracy']:.4f})")
    for score in result.ranking.scores:
        tau = result.taus[score]
        tau_text = "undefined (constant scores or accuracies)" if tau is None else f"{tau:+.3f}"
        out.print(
            f"{escape(f'{score:>6}')}: weighted Kendall tau = {tau_text}, "
            f"trials to the best model = {result.trials[score]} of {len(result.rows)}"
        )
    out.print(f"wrote {escape(str(result.csv_path))} and {escape(str(result.figure_path))}")


def _show_selection(result) -> None:
    out = _console()
    rows = [r for r in result.summary if r["truth"] == "best"]
    for regime in result.config.regimes:
        title = f"selection benchmark ({result.config.preset}), {regime}: means over targets [95% CI]"
        table = Table(title=escape(title), header_style="bold")
        for column in ("score", "group", "weighted tau", "top-1 gain", "top-3 gain", "top-3 regret", "trials to best"):
            table.add_column(column, justify="left" if column in ("score", "group") else "right", no_wrap=True)
        groups = ("prior", "baseline", "score")  # priors, baselines, then scores; by weighted tau within each
        regime_rows = sorted((r for r in rows if r["regime"] == regime),
                             key=lambda r: (groups.index(r["group"]) if r.get("group") in groups else len(groups),
                                            -(r.get("weighted_kendall") if r.get("weighted_kendall") is not None
                                              else -9)))
        for r in regime_rows:
            table.add_row(escape(r["score"]), escape(r.get("group", "")), _ci(r, "weighted_kendall"),
                          _ci(r, "top1_gain"), _ci(r, "top3_gain"), _ci(r, "top3_regret"),
                          _ci(r, "trials_to_best", signed=False))
        out.print(table)
    if result.claims:
        out.print(_claims_table(f"selection benchmark ({result.config.preset}): the claims of Deshpande et al. "
                                "[95% CI]", result.claims))
    out.print(f"wrote {escape(str(result.files['this report']))} and {len(result.files) - 1} tables and figures in "
              f"{escape(str(result.out_dir))}")


def _claims_table(title: str, claims) -> Table:
    """The claims as a table: a yes/no verdict with numbers, or a judged interval (studies._claims)."""
    table = Table(title=escape(title), header_style="bold")
    for column in ("claim", "setting", "verdict", "numbers"):
        table.add_column(column, overflow="fold")
    for c in claims:
        if "verdict" in c:
            verdict = c["verdict"] if c["verdict"] == "holds" else f"[red]{escape(c['verdict'])}[/]"
        else:
            verdict = "yes" if c["supported"] else "[red]no[/]"
        numbers = c.get("evidence", c.get("numbers", ""))
        table.add_row(escape(c["claim"]), escape(c["setting"]), verdict, escape(numbers))
    return table


def _show_claims(title: str):
    """A printer of a result's claims under ``title`` (formatted with ``preset``)."""

    def show(result) -> None:
        out = _console()
        out.print(_claims_table(title.format(preset=result.config.preset), result.claims))
        out.print(f"wrote {escape(str(result.files['report']))} and {len(result.files) - 1} tables and figures in "
                  f"{escape(str(result.out_dir))}")

    return show


def _show_bound(result) -> None:
    table = Table(title=escape(f"transfer bound ({result.config.preset}): across {len(result.pairs)} pairs [95% CI]"),
                  header_style="bold")
    for column in ("measure", "of", "estimate"):
        table.add_column(column, justify="right" if column == "estimate" else "left")
    for r in result.summary:
        table.add_row(escape(r["measure"]), escape(r["of"]),
                      escape(f"{r['estimate']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"))
    _console().print(table)
    _show_claims("transfer bound ({preset}): the paper's claims")(result)


@dataclasses.dataclass(frozen=True)
class _StudyCommand:
    """One generated command: its name, the runner it calls, its help, and how its result is printed."""

    name: str
    runner: str  # "module:function", imported when the command runs
    help: str
    preset_help: str
    show: Callable
    options: tuple[str, ...] = tuple(_STUDY_OPTIONS)


_DEMO_COMMAND = _StudyCommand(
    "demo", "transferlab.studies:run_demo",
    "Rank the built-in zoo for a target task with LogME and LEEP, then check by fine-tuning.",
    "tiny (seconds, for CI) or small (minutes on a laptop).", _show_demo,
    options=("preset", "out_dir", "device", "quiet"),
)
_STUDY_COMMANDS = (
    _StudyCommand("selection", "transferlab.studies:run_selection",
                  "The model-selection benchmark: every score ranks the zoo, fine-tuning checks it.",
                  "tiny (tests, CI), small (2-core CPU, ~37 min from empty) or full (GPU).", _show_selection),
    _StudyCommand("correlation", "transferlab.studies:run_correlation",
                  "The correlation study: Alice pre-trains, Bob reuses; task and feature correlation are knobs.",
                  "tiny (tests, CI), small (2-core CPU, ~10 min) or full (GPU).",
                  _show_claims("correlation study ({preset}): the paper's claims")),
    _StudyCommand("what-transfers", "transferlab.studies:run_what_transfers",
                  "What is being transferred: P-T against RI-T by accuracy, agreement, CKA, distance, barrier, "
                  "criticality.",
                  "tiny (tests, CI), small (2-core CPU) or full (GPU).",
                  _show_claims("what-transfers study ({preset}): DESIGN's expected shape")),
    _StudyCommand("bound", "transferlab.studies:run_bound",
                  "The transfer bound: bound each (model, target)'s linear-probe loss from the model's source task.",
                  "tiny (tests, CI), small (2-core CPU) or full (GPU).", _show_bound),
)


def _study_command(entry: _StudyCommand) -> Callable:
    """The Typer callback of ``entry``: its options from _STUDY_OPTIONS, its runner called with them."""

    def command(**options) -> None:
        _check_output(options.get("out_dir"), "--out", folder=True)
        if "device" in options:  # a Ray cluster may have the GPU this machine lacks
            _check_device(options["device"], here=options.get("executor", "inprocess") != "ray")
        module, _, name = entry.runner.partition(":")
        run = getattr(importlib.import_module(module), name)
        quiet = options.pop("quiet")
        keywords = {_RUNNER_KEYWORDS[k]: v for k, v in options.items() if k != "preset"}
        entry.show(run(options["preset"], progress=not quiet, console=_console(stderr=True, quiet=quiet), **keywords))

    parameters = []
    for name in entry.options:
        kind, default, flags, help_text = _STUDY_OPTIONS[name]
        help_text = entry.preset_help if name == "preset" else help_text.format(name=entry.name)
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                            default=typer.Option(default, *flags, help=help_text)))
    command.__signature__ = inspect.Signature(parameters, return_annotation=None)
    command.__name__ = command.__qualname__ = entry.name.replace("-", "_")
    command.__doc__ = entry.help
    return _user_errors(command)


app.command(_DEMO_COMMAND.name)(_study_command(_DEMO_COMMAND))
for _entry in _STUDY_COMMANDS:
    study_app.command(_entry.name)(_study_command(_entry))


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
        help="Comma-separated score names, per-model or pool-level (ncti, etran), or 'all' "
        "(default: logme, leep, nce, the knn and linear_probe baselines and the source_accuracy and "
        "parameters priors, where the inputs allow).",
    ),
    bootstrap: int = typer.Option(
        100, help="Stratified bootstrap resamples of the target samples for intervals and P(best); 0 turns it off."
    ),
    per_class: Optional[int] = typer.Option(
        None, help="Zoo ranking: score on at most this many target samples per class (default: the target spec's "
        "n_train_per_class, else 100)."
    ),
    shots: Optional[int] = typer.Option(None, help="--data: score on this many training images per class (seeded)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="--data: leave unreadable images out instead of stopping."),
    target_kind: str = typer.Option(
        "classes", "--target-kind", help="--data: what the labels are: classes, regression (a real-valued label "
        "column, or float targets in an .npz) or multilabel (label lists such as cat;dog, or a 0/1 matrix). "
        "Scores that do not support it are refused (default scores left out with a note).",
    ),
    source_per_class: int = typer.Option(100, help="At most this many source images per class for source features."),
    seed: int = typer.Option(0, help="Seed of the split, the shots, the gradient projection and seeded scores."),
    device: str = typer.Option("cpu", help="Torch device: cpu or cuda."),
    out_dir: Optional[Path] = typer.Option(
        None, "--out", help="Output folder for ranking.csv and ranking.json (default: transferlab-out/rank-TARGET)."
    ),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write the ranking to this CSV file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Rank a zoo for a target task (--target), or your models for your data (--models, --data); no fine-tuning."""
    _check_output(out_dir, "--out", folder=True)
    _check_output(csv_path, "--csv", folder=False)
    _check_device(device)
    if (models is None) != (data is None):
        raise ValueError("--models and --data go together (or use --target for a zoo ranking)")
    from transferlab._validation import check_target_kind

    check_target_kind(target_kind, "--target-kind")
    if models is not None:
        if target is not None:
            raise ValueError("give either --target (a zoo ranking) or --models and --data, not both")
        return _rank_models(models, data, scores, shots, skip_bad, seed, device, out_dir, csv_path, quiet, bootstrap,
                            target_kind)
    if target_kind != "classes":
        raise ValueError(f"--target-kind {target_kind} needs --models and --data: a zoo's targets are classes")
    if target is None:
        raise ValueError("give --target (a zoo ranking) or --models and --data (your own models and data)")
    from transferlab.data import load_sized
    from transferlab.rank import rank_zoo, split_score_names
    from transferlab.zoo import build_zoo

    per_model, pooled = split_score_names(None if scores is None else _split_names(scores))
    bootstrap = _check_bootstrap(bootstrap)
    per_class = _target_per_class(target, per_class)
    built = build_zoo(zoo, preset, device=device, progress=not quiet, console=_console(stderr=True, quiet=quiet))
    task = load_sized(target, train_per_class=per_class)
    ranking = rank_zoo(
        built, task, (*per_model, *pooled), device=device, progress=not quiet,
        source_per_class=source_per_class, seed=seed, bootstrap=bootstrap,
    )
    out_dir = out_dir if out_dir is not None else Path("transferlab-out") / f"rank-{_slug(target)}"
    written = _write_ranking(ranking, out_dir, csv_path, extra={"zoo": built.recipe.name, "preset": preset,
                                                                  "target_spec": target, "per_class": per_class,
                                                                  "seed": seed})
    _print_decision(f"{built.recipe.name} zoo ranked for {task.name}", ranking, ["model", "arch", "source"])
    _print_written(written)


def _target_per_class(target: str, per_class: int | None) -> int:
    """How many target train images per class a zoo ranking scores: ``--per-class``, the spec's, or 100.

    Checks the spec (before the zoo is built) and that ``--per-class`` and the spec's
    ``n_train_per_class`` agree when both are given.
    """
    import numbers

    from transferlab._validation import check_scalar
    from transferlab.data import parse_spec

    in_spec = parse_spec(target)[2].get("n_train_per_class")
    if per_class is not None:
        per_class = check_scalar(per_class, "--per-class", numbers.Integral, min_val=2)
        if in_spec is not None and in_spec != per_class:
            raise ValueError(
                f"--per-class {per_class} conflicts with n_train_per_class={in_spec} in --target {target!r}; "
                f"give the size once: drop --per-class, or drop n_train_per_class from the spec"
            )
        return per_class
    if in_spec is not None:  # scores need two samples per class
        return check_scalar(in_spec, f"n_train_per_class in --target {target!r}", numbers.Integral, min_val=2)
    return 100


def _check_bootstrap(bootstrap: int) -> int:
    import numbers

    from transferlab._validation import check_scalar

    return check_scalar(bootstrap, "--bootstrap", numbers.Integral, min_val=0)


def _rank_models(models, data, scores, shots, skip_bad, seed, device, out_dir, csv_path, quiet, bootstrap,
                 target_kind="classes") -> None:
    import warnings

    from transferlab.data import load_data
    from transferlab.models import parse_spec
    from transferlab.rank import rank_models

    specs = _split_names(models)
    for spec in specs:  # a malformed spec fails before any image is read
        parse_spec(spec)
    bootstrap = _check_bootstrap(bootstrap)
    with warnings.catch_warnings():  # the skipped files are reported below, in one line
        warnings.simplefilter("ignore")
        images = load_data(data, seed=seed, strict=not skip_bad, target_kind=target_kind)
    if images.skipped:
        shown = ", ".join(images.skipped[:5]) + (" ..." if len(images.skipped) > 5 else "")
        _console(stderr=True).print(f"[yellow]skipped {len(images.skipped)} unreadable image(s):[/] {escape(shown)}",
                                    highlight=False, soft_wrap=True)
    ranking = rank_models(specs, images, None if scores is None else _split_names(scores), shots=shots,
                          seed=seed, device=device, progress=not quiet, bootstrap=bootstrap)
    for note in ranking.notes:
        _console(stderr=True).print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    out_dir = out_dir if out_dir is not None else Path("transferlab-out") / f"rank-{_slug(Path(data).stem)}"
    written = _write_ranking(ranking, out_dir, csv_path, extra={"models": _split_names(models), "data": str(data),
                                                                  "shots": shots, "seed": seed,
                                                                  "target_kind": target_kind})
    _print_decision(f"models ranked for {ranking.target}", ranking,
                    [c for c in ("model", "has_head", "input_size", "feature_dim") if c in ranking.rows[0]])
    _print_written(written)


def _print_written(written: list) -> None:
    _console().print("wrote " + escape(", ".join(str(p) for p in written)), highlight=False, soft_wrap=True)


@app.command()
@_user_errors
def select(
    models: str = typer.Option(..., help="Candidates: SPEC[,SPEC...] with SPEC hf:<id or folder> or file:<path>.safetensors."),
    data: Path = typer.Option(..., help="Your data: an image folder (one subfolder per class), a .csv or an .npz."),
    score: Optional[str] = typer.Option(
        None, help="The score whose order picks the top k (default: the ranking's consensus order)."
    ),
    scores: Optional[str] = typer.Option(None, help="The ranking's columns, as for rank (default: rank's)."),
    top_k: Optional[str] = typer.Option(
        None, "--top-k", help="How many candidates to fine-tune, or 'all' (brute force) (default: 3, at most all)."
    ),
    lrs: str = typer.Option("0.03,0.01", help="Comma-separated learning rates; each candidate keeps the best on validation."),
    steps: Optional[int] = typer.Option(None, help="Budget per learning rate in optimiser steps (default: 30)."),
    epochs: Optional[int] = typer.Option(None, help="Budget per learning rate in epochs (instead of --steps)."),
    batch_size: int = typer.Option(32, help="Mini-batch size."),
    freeze: str = typer.Option(
        "none", help="none: fine-tune everything; backbone: train the new head only (a linear probe); "
        "K: freeze the first K stages where known (our file: networks)."
    ),
    patience: int = typer.Option(3, help="Early stopping: epochs without a lower validation loss (0: off)."),
    val_fraction: float = typer.Option(0.2, help="Share of each class's training images held out for validation."),
    bootstrap: int = typer.Option(100, help="The ranking's bootstrap resamples (0: off)."),
    seed: int = typer.Option(0, help="Seed of the split, the ranking, the new heads and the training."),
    device: str = typer.Option("cpu", help="Torch device: cpu or cuda."),
    executor: str = typer.Option("inprocess", help="Where fine-tuning jobs run: inprocess, process or ray."),
    out_dir: Optional[Path] = typer.Option(
        None, "--out", help="Output folder (default: transferlab-out/select-DATA)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Rank your models for your data, fine-tune the top k, keep the best: a checkpoint you can load back."""
    _check_output(out_dir, "--out", folder=True)
    _check_device(device)
    from transferlab.rank import select as run_select

    try:
        lr_values = [float(x) for x in _split_names(lrs)]
    except ValueError:
        raise ValueError(f"--lrs must be comma-separated numbers; got {lrs!r}") from None
    k = None if top_k is None else "all" if top_k.strip().lower() == "all" else _int_option(top_k, "--top-k")
    out_dir = out_dir if out_dir is not None else Path("transferlab-out") / f"select-{_slug(Path(data).stem)}"
    selection = run_select(
        _split_names(models), data, score=score, scores=None if scores is None else _split_names(scores), top_k=k,
        lrs=lr_values, steps=steps, epochs=epochs, batch_size=batch_size, freeze=freeze,
        val_fraction=val_fraction, patience=patience or None, seed=seed, device=device, bootstrap=bootstrap,
        executor=executor, out_dir=out_dir, progress=not quiet,
    )
    written = _write_selection(selection, Path(out_dir))
    _print_selection(selection)
    _print_written(written)


def _int_option(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{flag} must be an integer or 'all'; got {value!r}") from None


def _write_selection(selection, out_dir: Path) -> list[Path]:
    import json

    from transferlab._atomic import atomic_write_bytes
    from transferlab.report import plot_score_vs_accuracy, select_markdown, write_csv

    d = selection.to_dict()
    rows = [{k: v for k, v in r.items() if k != "checkpoint"} for r in d["rows"]]
    written = [Path(write_csv(out_dir / "select.csv", rows)),
               Path(atomic_write_bytes(out_dir / "select.json", (json.dumps(d, indent=2) + "\n").encode())),
               Path(atomic_write_bytes(out_dir / "select.md", select_markdown(d).encode()))]
    by_model = {r["model"]: r for r in selection.ranking.rows}
    tuned = [{**by_model[r["model"]], "test_accuracy": r["test_accuracy"], "arch": r["model"], "source": ""}
             for r in d["rows"] if r["fine_tuned"]]
    shown = [n for n in selection.ranking.columns if all(t.get(n) is not None for t in tuned)][:4]
    if tuned and shown:
        written.append(Path(plot_score_vs_accuracy(tuned, shown, out_dir / "select.png", accuracy="test_accuracy",
                                                   title="fine-tuned candidates: score against test accuracy")))
    written.append(Path(selection.checkpoint))
    return written


def _print_selection(selection) -> None:
    console = _console()
    chosen = next(r for r in selection.rows if r["model"] == selection.chosen)
    console.print(f"[bold]Chosen: {escape(selection.chosen)}[/] (validation accuracy {chosen['val_accuracy']:.1%}, "
                  f"test accuracy {chosen['test_accuracy']:.1%}, lr {chosen['lr']:g}); "
                  f"saved to {escape(str(selection.checkpoint))}", highlight=False, soft_wrap=True)
    table = Table(title=escape(f"candidates in the order of {selection.by}"), header_style="bold")
    for name, justify in (("#", "right"), ("model", "left"), (selection.by, "right"), ("fine-tuned", "left"),
                          ("val acc", "right"), ("test acc", "right"), ("lr", "right"), ("seconds", "right")):
        table.add_column(escape(name), justify=justify, no_wrap=True)
    for r in selection.rows:
        tuned = r["fine_tuned"]
        table.add_row(str(r["position"]), escape(r["model"]), _fmt(r["score"]), "yes" if tuned else "no",
                      f"{r['val_accuracy']:.3f}" if tuned else "-", f"{r['test_accuracy']:.3f}" if tuned else "-",
                      f"{r['lr']:g}" if tuned else "-", f"{r['seconds']:.1f}" if tuned else "-")
    console.print(table)
    s = selection.seconds
    console.print(f"cost: ranking {s['ranking']:.1f} s + fine-tuning {s['fine_tuning']:.1f} s against brute force "
                  f"~{selection.brute_force_seconds:.1f} s (ratio {selection.cost_ratio:.2f})", highlight=False)
    for name, regret in selection.regret.items():
        console.print(f"regret of {escape(name)}: top-1 {regret['top1']:.1f} points, top-3 {regret['top3']:.1f} points",
                      highlight=False)


_GROUP_ORDER = ("prior", "baseline", "score")


def _decision_cell(ranking, name: str, i: int) -> list[str]:
    """A score's cell for row ``i``: "value (#rank)", then "[low, high] P=.." where bootstrapped."""
    value = ranking.rows[i][name]
    if value is None:
        return ["n/a"]
    rank = ranking.ranks[name][i]
    lines = [f"{_fmt_value(name, value)} (#{rank:g})"]
    u = ranking.uncertainty.get(name)
    if u is not None:
        mark = " ~" if u["within_noise"][i] else ""
        lines.append(f"[{_fmt_value(name, u['low'][i])}, {_fmt_value(name, u['high'][i])}] "
                     f"P={u['p_best'][i]:.2f}{mark}")
    return lines


def _fmt_value(name: str, value) -> str:
    if name == "parameters":
        for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if value >= size:
                return f"{value / size:.3g}{unit}"
        return f"{value:.0f}"
    return f"{value:.4f}"


def _print_decision(title: str, ranking, info: list[str]) -> None:
    """The recommendation first, then one table (split when too wide): rank and value per score, by group."""
    console = _console()
    console.print(f"[bold]{escape(ranking.recommendation.get('text', ''))}[/]", highlight=False, soft_wrap=True)
    columns = sorted(ranking.columns, key=lambda n: _GROUP_ORDER.index(ranking.groups.get(n, "score")))
    cells = {n: [_decision_cell(ranking, n, i) for i in range(len(ranking.rows))] for n in columns}
    info_cells = {c: [[_fmt(row.get(c))] for row in ranking.rows] for c in [*info, "consensus_rank"]}

    def width(name: str, column) -> int:
        header = max(len(name), len(ranking.groups.get(name, "")) + 2)
        return max(header, *(len(line) for cell in column for line in cell)) + 3

    fixed = len(str(len(ranking.rows))) + 4 + width("model", info_cells["model"])
    base = fixed + sum(width(c, info_cells[c]) for c in info_cells if c != "model")
    chunks, current, used = [], [], base
    for name in columns:
        if current and used + width(name, cells[name]) > console.width:
            chunks.append(current)
            current, used = [], fixed
        current.append(name)
        used += width(name, cells[name])
    chunks.append(current)
    for k, chunk in enumerate(chunks):
        shown = list(info_cells) if k == 0 else ["model"]
        table = Table(title=escape(f"{title} (sorted by consensus rank)") if k == 0 else None, header_style="bold")
        table.add_column("#", justify="right", no_wrap=True)
        for c in shown:
            table.add_column(escape(c), justify="left" if c in ("model", "arch", "source") else "right", no_wrap=True)
        for name in chunk:
            table.add_column(escape(f"{name}\n({ranking.groups.get(name, 'score')})"), justify="right", no_wrap=True)
        for i in range(len(ranking.rows)):
            table.add_row(str(i + 1), *(escape(info_cells[c][i][0]) for c in shown),
                          *(escape("\n".join(cells[n][i])) for n in chunk))
        console.print(table)
    boot = ranking.bootstrap
    if boot.get("resamples"):
        plain = getattr(ranking, "target_kind", "classes") != "classes"  # no classes to stratify by
        console.print(f"intervals: {boot['level']:.0%} {'plain' if plain else 'stratified'} bootstrap, "
                      f"{boot['resamples']} resamples "
                      f"(seed {boot['seed']}); P = probability of ranking first; ~ = within noise of the first",
                      highlight=False, soft_wrap=True)
        for name, why in boot.get("skipped", {}).items():
            console.print(f"[yellow]no interval for {escape(name)}:[/] {escape(why)}", highlight=False, soft_wrap=True)
    tau = [(a, b, ranking.agreement["tau"][i][j]) for i, a in enumerate(ranking.agreement.get("scores", []))
           for j, b in enumerate(ranking.agreement.get("scores", [])) if i < j]
    known = [t for *_, t in tau if t is not None]
    if known:
        console.print(f"agreement between scores (Kendall tau): mean {sum(known) / len(known):+.2f} over "
                      f"{len(known)} pair(s), from {min(known):+.2f} to {max(known):+.2f}", highlight=False)


def _slug(text: str) -> str:
    """A file-name-safe form of a task spec (``glyphs:greek`` -> ``glyphs-greek``)."""
    import re

    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-") or "target"


def _write_ranking(ranking, out_dir: Path, csv_path: Optional[Path], *, extra: dict) -> list[Path]:
    """Write ``ranking.csv`` and ``ranking.json`` (with the run's settings) into ``out_dir``, and ``csv_path``.

    The ranking is printed only once it is on disk: a write that fails (a full
    disk, a path that is a file) is the command's one line of output.
    """
    import json

    from transferlab._atomic import atomic_write_bytes
    from transferlab.report import write_csv

    from transferlab.report import plot_agreement, plot_ranking, ranking_markdown

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = ranking.table()
    csv_file = write_csv(out_dir / "ranking.csv", table)
    payload = {**extra, **ranking.to_dict()}
    json_file = atomic_write_bytes(out_dir / "ranking.json", (json.dumps(payload, indent=2) + "\n").encode())
    md_file = atomic_write_bytes(out_dir / "ranking.md", ranking_markdown(payload).encode())
    written = [Path(csv_file), Path(json_file), Path(md_file),
               Path(plot_ranking(payload, out_dir / "ranking.png"))]
    if len(ranking.agreement.get("scores", [])) >= 2:
        written.append(Path(plot_agreement(payload, out_dir / "agreement.png")))
    if csv_path is not None:
        written.append(Path(write_csv(csv_path, table)))
    return written


def _read_results_csv(path: Path) -> list[dict]:
    """The rows of a results CSV as ``csv.DictReader`` gives them (validation: evaluate.check_table)."""
    import csv

    path = Path(path)
    if not path.exists():
        raise ValueError(f"results table {path} does not exist")
    if path.is_dir():
        raise ValueError(f"results table {path} is a folder, not a CSV file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"results table {path} is not a readable CSV file ({exc})") from None
    if not rows:
        raise ValueError(f"results table {path} has no data rows (a header line and one row per target and model)")
    return rows


@app.command()
@_user_errors
def evaluate(
    results: Path = typer.Argument(..., help="CSV: target, model, accuracy, one column per score (optional: regime)."),
    baseline: Optional[str] = typer.Option(
        None, help="Model every selection must beat (gains over it); without it, relative top-k accuracy."
    ),
    out_dir: Optional[Path] = typer.Option(
        None, "--out", help="Output folder (default: transferlab-out/evaluate-RESULTS)."
    ),
    seed: int = typer.Option(0, help="Seed of the bootstrap over targets."),
) -> None:
    """Judge scores from fine-tuning done elsewhere: the selection study's metrics, intervals and figures."""
    _check_output(out_dir, "--out", folder=True)
    from transferlab.evaluate import evaluate_table
    from transferlab.report import write_table_report

    if seed < 0:
        raise ValueError(f"--seed must be an integer >= 0; got {seed}")
    evaluation = evaluate_table(_read_results_csv(results), baseline=baseline, seed=seed)
    out_dir = out_dir if out_dir is not None else Path("transferlab-out") / f"evaluate-{_slug(Path(results).stem)}"
    written = write_table_report(evaluation, out_dir, source=Path(results).name)
    for regime in evaluation["regimes"]:
        rows = [r for r in evaluation["summary"] if r["regime"] == regime]
        rows.sort(key=lambda r: -(r["weighted_kendall"] if r["weighted_kendall"] is not None else -9))
        _print_rows(f"Regime {regime}: means over {len(evaluation['targets'])} targets (95% intervals in summary.csv)",
                    rows, ["score", "n_targets", "weighted_kendall", "spearman", "pearson",
                           "top1_gain" if baseline else "relative_top1_accuracy",
                           "top3_gain" if baseline else "relative_top3_accuracy", "trials_to_best"])
    _print_written(list(written.values()))


@data_app.command("list")
@_user_errors
def data_list() -> None:
    """Show each built-in source and whether its files are present."""
    from transferlab.data import list_sources

    table = Table(title="Built-in sources", header_style="bold")
    for column in ("source", "variants", "available", "location", "description"):
        table.add_column(column)
    for info in list_sources():
        table.add_row(
            escape(info.name),
            escape(", ".join(info.variants) or "-"),
            "[green]yes[/]" if info.available else "[red]no[/]",
            escape(str(info.location)),
            escape(info.description),
        )
    _console().print(table)


@data_app.command("download")
@_user_errors
def data_download(
    source: str = typer.Argument(..., help="The source to download: fashion."),
    force: bool = typer.Option(False, help="Download again even if verified files are present."),
) -> None:
    """Download a source's files (SHA-256 verified) into $TRANSFERLAB_DATA."""
    from transferlab.data import download_fashion

    if source != "fashion":
        raise ValueError(f"only 'fashion' is downloaded; the other sources are built in or generated (got {source!r})")
    folder = download_fashion(force=force)
    _console().print(f"Fashion-MNIST verified in {escape(str(folder))}")


@zoo_app.command("build")
@_user_errors
def zoo_build(
    recipe: str = typer.Argument("builtin", help="A built-in recipe name or a .toml path."),
    preset: str = typer.Option("small", help="Recipe preset."),
    device: str = typer.Option("cpu", help="Torch device: cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train every member of a zoo recipe that is not cached yet."""
    from transferlab.zoo import build_zoo

    _check_device(device)

    built = build_zoo(recipe, preset, device=device, progress=not quiet, console=_console(stderr=True, quiet=quiet))
    _console().print(escape(f"zoo {built.recipe.name}/{preset}: {len(built)} members in {built.root}"))


@zoo_app.command("list")
@_user_errors
def zoo_list(
    recipe: str = typer.Argument("builtin", help="A built-in recipe name or a .toml path."),
    preset: str = typer.Option("small", help="Recipe preset."),
) -> None:
    """Show the members of a zoo recipe, and the source accuracy of those built."""
    from transferlab.zoo import zoo_members

    rows = zoo_members(recipe, preset)
    table = Table(title=escape(f"zoo {recipe} ({preset})"), header_style="bold")
    for column in ("member", "role", "arch", "source", "built", "source accuracy"):
        table.add_column(column)
    for row in rows:
        acc = row["source_accuracy"]
        table.add_row(*(escape(str(v)) for v in (row["name"], row.get("role", "single"), row["arch"], row["source"])),
                      "yes" if row["built"] else "no", "-" if acc is None else f"{acc:.4f}")
    _console().print(table)


def main() -> None:
    keep_freed_memory()  # this process runs torch on the CPU: batches reuse memory instead of faulting it in
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
