"""prefetched: work done ahead by threads, handed out in order, bounded, and stopped when closed."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from transferlab._prefetch import prefetched


def test_results_come_in_order_whatever_finishes_first():
    def slow_first(x):
        if x == 0:
            threading.Event().wait(0.05)
        return x * x

    got = list(prefetched(range(10), lambda pool, x: pool.submit(slow_first, x), Future.result,
                          workers=4, ahead=3, name="t"))
    assert got == [x * x for x in range(10)]


def test_at_most_ahead_plus_one_items_submitted_beyond_those_handed_out():
    submitted, handed = [], []

    def submit(pool, x):
        submitted.append(x)
        assert len(submitted) - len(handed) <= 3  # ahead + 1 = 3: never more work in existence
        return pool.submit(lambda: x)

    for value in prefetched(range(20), submit, Future.result, workers=2, ahead=2, name="t"):
        handed.append(value)
    assert handed == list(range(20)) and submitted == list(range(20))


def test_closing_early_stops_submitting_and_ends_the_threads():
    submitted = []
    it = prefetched(range(100), lambda pool, x: (submitted.append(x), pool.submit(lambda: x))[1], Future.result,
                    workers=2, ahead=2, name="prefetch-test")
    assert next(it) == 0
    it.close()
    assert len(submitted) == 3  # the first two, and the one submitted when the first was handed out
    assert not [t for t in threading.enumerate() if t.name.startswith("prefetch-test")]
