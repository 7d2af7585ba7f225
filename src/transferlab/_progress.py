"""One Rich progress bar helper shared by every long loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Minimum seconds between two refreshes of a bar: per-batch updates must not cost time.
_REFRESH_INTERVAL = 0.1


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n, **fields)``; shows a transient Rich bar when ``enabled``.

    Updates are throttled so that a bar around a tight loop costs (almost) nothing.
    The description and the fields are shown as they are: a model name or a
    path with square brackets is never read as Rich markup.
    """
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:  # bars only where a person watches
        yield lambda n=1, **fields: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        auto_refresh=False,
    )
    task = progress.add_task(escape(description), total=total, info="")
    pending = 0
    last = 0.0

    def advance(n: int = 1, **fields) -> None:
        nonlocal pending, last
        pending += n
        now = time.monotonic()
        if fields or now - last >= _REFRESH_INTERVAL:
            progress.update(task, advance=pending, **({"info": _format(fields)} if fields else {}))
            progress.refresh()
            pending = 0
            last = now

    with progress:
        yield advance
        if pending:
            progress.update(task, advance=pending)


def _format(fields: dict) -> str:
    return escape("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()))
