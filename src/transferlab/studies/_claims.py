"""The rows of every study's ``claims.csv``: one verdict per claim, with its numbers.

Two shapes share the columns ``claim``, ``setting`` and a verdict:

- :func:`claim`: a yes/no verdict (``supported``) with the numbers as text,
  used by the correlation, what-transfers and bound studies;
- :func:`judged_claim`: a statistic with its estimate and bootstrap interval,
  judged against a threshold by :func:`verdict` ("holds", "does not hold" or
  "inconclusive" when the interval straddles the threshold), used by the
  selection study; its ``supported`` column is ``verdict == "holds"`` so both
  shapes print alike.
"""

from __future__ import annotations

#: The three verdicts of :func:`verdict`.
VERDICTS = ("holds", "does not hold", "inconclusive")


def claim(claim: str, setting: str, supported, numbers: str) -> dict:
    """A yes/no verdict on ``claim`` in ``setting``, with the numbers behind it."""
    return {"claim": claim, "setting": setting, "supported": bool(supported), "numbers": numbers}


def verdict(low, high, threshold: float, *, above: bool = True) -> str:
    """Judge a claim "the statistic is above (or below) ``threshold``" by its interval ``[low, high]``.

    For ``above``: "holds" when ``low > threshold`` (the whole interval is
    above), "does not hold" when ``high <= threshold`` (none of it is),
    "inconclusive" otherwise (the interval straddles the threshold). For a claim
    "below": "holds" when ``high < threshold``, "does not hold" when
    ``low >= threshold``. A missing interval (``None``) is "inconclusive".

    Examples
    --------
    >>> verdict(0.1, 0.3, 0.0), verdict(-0.1, 0.3, 0.0), verdict(-0.3, 0.0, 0.0), verdict(0.1, 0.2, 0.5, above=False)
    ('holds', 'inconclusive', 'does not hold', 'holds')
    """
    if low is None or high is None:
        return "inconclusive"
    if low > high:
        raise ValueError(f"an interval needs low <= high; got [{low!r}, {high!r}]")
    if above:
        return "holds" if low > threshold else "does not hold" if high <= threshold else "inconclusive"
    return "holds" if high < threshold else "does not hold" if low >= threshold else "inconclusive"


def judged_claim(claim: str, setting: str, statistic: str, interval, threshold: float, evidence: str, *,
                 above: bool = True) -> dict:
    """A claim judged by the interval of a statistic: ``interval`` is ``(estimate, low, high)`` or ``None``."""
    estimate, low, high = interval if interval is not None else (None, None, None)
    judged = verdict(low, high, threshold, above=above)
    return {"claim": claim, "setting": setting, "statistic": statistic, "estimate": estimate, "low": low,
            "high": high, "threshold": threshold, "verdict": judged, "supported": judged == "holds",
            "evidence": evidence}
