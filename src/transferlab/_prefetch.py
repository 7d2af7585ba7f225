"""Work on the items of a sequence done a few items ahead by threads, handed out in order."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_END = object()


def prefetched(items: Iterable, submit: Callable[[ThreadPoolExecutor, Any], Any], resolve: Callable[[Any], Any], *,
               workers: int, ahead: int, name: str) -> Iterator:
    """``resolve(submit(pool, item))`` of each item, in order, with ``ahead`` items submitted beyond the current one.

    ``submit`` hands an item's work to ``pool`` (a pool of ``workers`` threads
    named ``name``) and returns a handle (a future, or several); ``resolve``
    waits for a handle and returns the item's result. An item's result is
    resolved before the next item is submitted, so at most ``ahead + 1`` items'
    work exists at once. Closing the iterator early (or an error) cancels the
    work not started and waits for the threads.
    """
    items = iter(items)
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        pending = deque(submit(pool, item) for item in itertools.islice(items, ahead))
        while pending:
            result = resolve(pending.popleft())
            following = next(items, _END)
            if following is not _END:
                pending.append(submit(pool, following))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
