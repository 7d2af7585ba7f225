"""The shared progress bar shows names as they are: square brackets are not Rich markup."""

from __future__ import annotations

import io
import re

from rich.console import Console

from transferlab import _progress


def test_a_description_and_fields_with_brackets_print_literally(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(_progress, "Console",
                        lambda **kwargs: Console(file=buffer, force_terminal=True, width=200, color_system=None))
    with _progress.progress_bar("extracting x[bold]y", 2) as advance:
        advance(1, model="m[/x]")  # "[/x]" as markup would raise MarkupError
        advance(1)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    assert "extracting x[bold]y" in text
    assert "model=m[/x]" in text
