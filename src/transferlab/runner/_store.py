"""A results store on SQLite: a finished job is never run again.

Every unit of expensive work has a deterministic key (a digest of everything it
depends on). Its JSON result is committed in one transaction when the job
finishes, so killing a run loses at most the job in flight, and running again
skips everything already stored.

Faults the store survives or names:

- **Corruption.** A file that is not SQLite, a truncated file, or a row whose
  text is not JSON or no longer matches the digest written with it (a row edited
  to ``{}`` or ``null`` by hand, a flipped bit) raises a ``ValueError`` that names
  the store file and the job, and offers the fix (:meth:`ResultStore.repair`
  drops only the bad rows; deleting the file starts afresh). A ``{}`` or
  ``null`` written by :meth:`ResultStore.put` is a legitimate result (a job may
  return ``None``) and is returned as is: the store cannot know what a caller
  expects, so it verifies that a row holds what was written, not what it means.
- **Locks.** Another process holding the database longer than ``timeout``:
  each write is retried with back-off; a result that still cannot be written is
  kept in a side file (``<store>.pending.jsonl``), read as stored, and merged
  into the database by the next :class:`ResultStore` opened on it. A finished
  result is never lost to a lock.
- **Concurrent runs.** Jobs are claimed with leases (owner pid, host, expiry),
  so a second run on the same store waits for the jobs a live run holds
  instead of doing them again (see :func:`~transferlab.runner._jobs.run_jobs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL
)
"""

#: Jobs claimed by a run: a live owner's unexpired lease makes other runs wait for its result.
_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    expires REAL NOT NULL
)
"""

#: Keys per ``IN (...)`` query: well under SQLite's limit on bound variables.
_CHUNK = 500
#: Hex digits of the SHA-256 of a value's text kept with the row (stores before it have NULL there).
_DIGEST_HEX = 16
#: Seconds of the first pause between two tries of a locked store; it doubles up to _MAX_BACKOFF.
_FIRST_BACKOFF = 0.5
_MAX_BACKOFF = 30.0


def job_key(kind: str, **parts: Any) -> str:
    """Deterministic key of a job: ``kind`` and a digest of its JSON-serialisable parts.

    Parameters
    ----------
    kind : str
        What the job does (``"finetune"``, ``"score"``, ...); the key starts with it.
    **parts
        Everything the result depends on, JSON-serialisable. The digest is taken
        over the canonical JSON (sorted keys, no spaces), so the order of the
        parts does not matter and a tuple keys like a list.

    Returns
    -------
    str
        ``"<kind>:<24 hex digits of the SHA-256 of the canonical JSON>"``.

    Examples
    --------
    >>> job_key("ft", a=1, b=[1, 2]) == job_key("ft", b=(1, 2), a=1)
    True
    """
    try:
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise ValueError(f"job parts must be JSON-serialisable: {exc}") from None
    return f"{kind}:{hashlib.sha256(canonical.encode()).hexdigest()[:24]}"


@dataclass(frozen=True)
class LeaseOwner:
    """Who holds a lease: one run (a random token) of one process on one host."""

    token: str
    pid: int
    host: str

    @classmethod
    def here(cls) -> LeaseOwner:
        """A fresh owner for a run in this process."""
        return cls(uuid.uuid4().hex, os.getpid(), socket.gethostname())


class ResultStore:
    """JSON results keyed by job key, in one SQLite file.

    Every :meth:`put` is its own transaction, so a result is either stored whole
    or not at all, whatever kills the process. The journal is in WAL mode: one
    writer and any number of readers at a time (a test or a dashboard may read
    while a run writes). Each row keeps a digest of its text, checked on every
    read: a row changed behind the store's back is reported, never returned.

    Parameters
    ----------
    path : str or Path
        The database file; created with its folder when missing.
    timeout : float
        Seconds one try waits for a lock another process holds.
    retries : int
        Further tries of a locked operation, after pauses that double from 0.5 s
        (capped at 30 s). A result that still cannot be written goes to
        :attr:`pending_path` and is merged by the next store opened on ``path``.

    Raises
    ------
    ValueError
        When the file is not a SQLite database or is damaged (the message names
        the file and the fix), or cannot be opened at all.
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0, retries: int = 4):
        self.path = Path(path)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise ValueError(f"timeout must be a non-negative number of seconds; got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer; got {retries!r}")
        self.timeout = float(timeout)
        self.retries = retries
        if self.path.is_dir():
            raise ValueError(f"results store {self.path} is a folder; it must be a SQLite file (or not exist yet)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._call(self._create, None)
        self.merge_pending()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    @property
    def pending_path(self) -> Path:
        """The side file of results that could not be written while the store was locked."""
        return self.path.with_name(self.path.stem + ".pending.jsonl")

    # ------------------------------------------------------------------ reading

    def get(self, key: str) -> Any | None:
        """The stored result of ``key``, or None when there is none (see ``key in store``)."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The stored results of those ``keys`` that have one, by key (one query per 500 keys).

        Raises
        ------
        ValueError
            When a row is not JSON or does not match the digest written with it:
            the message names the store, the job's key and the fix.
        """
        keys = list(dict.fromkeys(keys))

        def read(con):
            rows = {}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, value, digest FROM results WHERE key IN ({marks})"
                rows.update((key, (value, digest)) for key, value, digest in con.execute(query, chunk))
            return rows

        rows = self._call(read, None)
        found: dict[str, Any] = {}
        wanted = set(keys)
        for key, (text, digest) in self._pending_rows().items():
            if key in wanted and key not in rows:
                rows[key] = (text, digest)
        for key in keys:
            if key in rows:
                found[key] = self._decode(key, *rows[key])
        return found

    def timings(self, keys: Iterable[str] | None = None) -> dict[str, float]:
        """Seconds each stored job took, by key (all stored jobs when ``keys`` is None)."""
        if keys is None:
            return self._call(lambda con: dict(con.execute("SELECT key, seconds FROM results")), None)
        keys = list(dict.fromkeys(keys))

        def read(con):
            found: dict[str, float] = {}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(con.execute(f"SELECT key, seconds FROM results WHERE key IN ({marks})", chunk))
            return found

        return self._call(read, None)

    def __contains__(self, key: str) -> bool:
        # Not `get(key) is not None`: a job may legitimately return None (JSON null).
        row = self._call(lambda con: con.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone(), key)
        return row is not None or key in self._pending_rows()

    def __len__(self) -> int:
        return self._call(lambda con: con.execute("SELECT COUNT(*) FROM results").fetchone()[0], None)

    def keys(self, kind: str | None = None) -> list[str]:
        """Every stored key, sorted; only those of one ``kind`` when given."""

        def read(con):
            if kind is None:
                return con.execute("SELECT key FROM results ORDER BY key").fetchall()
            return con.execute("SELECT key FROM results WHERE kind = ? ORDER BY key", (kind,)).fetchall()

        return [r[0] for r in self._call(read, None)]

    def check(self) -> dict[str, str]:
        """Every row that is not JSON or does not match its digest: ``{key: what is wrong}`` (empty when sound)."""
        rows = self._call(lambda con: con.execute("SELECT key, value, digest FROM results").fetchall(), None)
        bad = {}
        for key, text, digest in rows:
            problem = _row_problem(text, digest)
            if problem:
                bad[key] = problem
        return bad

    def repair(self) -> list[str]:
        """Delete the rows :meth:`check` finds bad and return their keys; their jobs run again next time."""
        bad = sorted(self.check())

        def delete(con):
            con.executemany("DELETE FROM results WHERE key = ?", [(key,) for key in bad])

        if bad:
            self._call(delete, None, write=True)
        return bad

    # ------------------------------------------------------------------ writing

    def put(self, key: str, value: Any, *, seconds: float = 0.0) -> None:
        """Store ``value`` (JSON-serialisable) under ``key`` in one transaction, replacing any earlier one.

        ``seconds`` is the wall time the job took, kept for cost tables (:meth:`timings`).
        The key's lease, if any, is released in the same transaction. When another
        process holds the store locked through every retry, the result goes to
        :attr:`pending_path` instead (one warning line says so) and counts as stored.
        """
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"value for key {key!r} must be JSON-serialisable; got {type(value).__name__}: {exc}"
            ) from None
        row = (key, key.split(":", 1)[0], text, float(seconds), time.time(), _digest(text))

        def write(con):
            con.execute(
                "INSERT OR REPLACE INTO results (key, kind, value, seconds, created, digest) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            con.execute("DELETE FROM leases WHERE key = ?", (key,))

        try:
            self._call(write, key, write=True)
        except _StoreLocked as exc:
            self._append_pending(row)
            warnings.warn(
                f"results store {self.path} stayed locked by another process ({exc.waited:.0f} s): "
                f"the result of job {key} went to {self.pending_path}, which the next run merges",
                RuntimeWarning,
                stacklevel=2,
            )

    def run(self, key: str, job: Callable[[], Any]) -> Any:
        """Return the stored result of ``key``, or run ``job()``, store and return its result."""
        found = self.get_many([key])
        if key in found:
            return found[key]
        start = time.perf_counter()
        value = job()
        self.put(key, value, seconds=time.perf_counter() - start)
        return json.loads(json.dumps(value))

    def merge_pending(self) -> int:
        """Move the results of :attr:`pending_path` into the database; the number merged.

        Called when a store is opened. While the database is still locked the
        file stays (its results are read as stored) and 0 is returned.
        """
        if not self.pending_path.exists():
            return 0
        moving = self.pending_path.with_name(f"{self.pending_path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(self.pending_path, moving)  # lines appended from now on go to a new pending file
        except FileNotFoundError:  # another process merged it first
            return 0
        text = moving.read_text()
        rows = list(_parse_pending(text).values())

        def write(con):
            con.executemany(
                "INSERT OR REPLACE INTO results (key, kind, value, seconds, created, digest) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            con.executemany("DELETE FROM leases WHERE key = ?", [(row[0],) for row in rows])

        try:
            self._call(write, None, write=True, retries=0)
        except _StoreLocked:
            with open(self.pending_path, "a") as f:  # put them back for the next try
                f.write(text if text.endswith("\n") or not text else text + "\n")
            moving.unlink()
            return 0
        moving.unlink()
        return len(rows)

    # ------------------------------------------------------------------ leases

    def _claim(self, keys: list[str], owner: LeaseOwner, seconds: float) -> tuple[list[str], list[str]]:
        """Lease those ``keys`` that have no result and no live lease: ``(claimed, stored)``.

        A lease of a dead process on this host, or an expired one, is taken over.
        """
        pending = self._pending_rows()

        def claim(con):
            stored, claimed = [], []
            now = time.time()
            for key in keys:
                if key in pending or con.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone():
                    stored.append(key)
                    continue
                lease = con.execute("SELECT owner, pid, host, expires FROM leases WHERE key = ?", (key,)).fetchone()
                if lease is not None and lease[0] != owner.token and _lease_alive(*lease[1:], now):
                    continue
                con.execute(
                    "INSERT OR REPLACE INTO leases (key, owner, pid, host, expires) VALUES (?, ?, ?, ?, ?)",
                    (key, owner.token, owner.pid, owner.host, now + seconds),
                )
                claimed.append(key)
            return claimed, stored

        return self._call(claim, None, write=True)

    def _renew(self, owner: LeaseOwner, seconds: float) -> None:
        """Push back the expiry of every lease ``owner`` holds."""
        def renew(con):
            con.execute("UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + seconds, owner.token))

        self._call(renew, None, write=True, retries=0)

    def _release(self, owner: LeaseOwner) -> None:
        """Drop every lease ``owner`` still holds (jobs it did not finish)."""
        self._call(lambda con: con.execute("DELETE FROM leases WHERE owner = ?", (owner.token,)), None, write=True)

    # ------------------------------------------------------------------ plumbing

    def _create(self, con: sqlite3.Connection) -> None:
        con.execute(_SCHEMA)
        con.execute(_LEASES)
        columns = {row[1] for row in con.execute("PRAGMA table_info(results)")}
        if "digest" not in columns:  # a store written before digests: its rows are checked as JSON only
            con.execute("ALTER TABLE results ADD COLUMN digest TEXT")
        status = con.execute("PRAGMA quick_check").fetchone()[0]
        if status != "ok":
            raise sqlite3.DatabaseError(status)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def _call(self, action, key: str | None, *, write: bool = False, retries: int | None = None):
        """``action(connection)`` in one transaction, retried while locked; SQLite errors become ValueErrors."""
        retries = self.retries if retries is None else retries
        pause, waited = _FIRST_BACKOFF, 0.0
        for attempt in range(retries + 1):
            start = time.monotonic()
            try:
                con = self._connect()
                try:
                    con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    try:
                        result = action(con)
                        con.execute("COMMIT")
                    except BaseException:
                        with contextlib.suppress(sqlite3.Error):
                            con.execute("ROLLBACK")
                        raise
                    return result
                finally:
                    con.close()
            except sqlite3.OperationalError as exc:
                waited += time.monotonic() - start
                if not _is_locked(exc):
                    raise ValueError(f"cannot use the results store {self.path}: {exc}{_hint(exc)}") from None
                if attempt == retries:
                    raise _StoreLocked(self.path, waited, attempt + 1) from None
                time.sleep(pause)
                waited += pause
                pause = min(2 * pause, _MAX_BACKOFF)
            except sqlite3.DatabaseError as exc:  # not SQLite, truncated, damaged pages
                raise ValueError(
                    f"results store {self.path} is damaged ({exc})"
                    + (f" while reading the result of job {key}" if key else "")
                    + f"; delete or move {self.path} to start afresh (the finished jobs in it are lost "
                    "and run again)"
                ) from None

    def _decode(self, key: str, text: str, digest: str | None) -> Any:
        problem = _row_problem(text, digest)
        if problem:
            raise ValueError(
                f"results store {self.path}: the stored result of job {key} is corrupt ({problem}); "
                f"drop the bad rows with ResultStore({str(self.path)!r}).repair() (their jobs run again), "
                f"or delete or move {self.path} to start afresh (the finished jobs in it are lost)"
            )
        return json.loads(text)

    def _append_pending(self, row: tuple) -> None:
        key, kind, text, seconds, created, digest = row
        line = json.dumps(
            {"key": key, "kind": kind, "value": text, "seconds": seconds, "created": created, "digest": digest}
        )
        fd = os.open(self.pending_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())  # one O_APPEND write: whole lines, even from many processes
            os.fsync(fd)
        finally:
            os.close(fd)

    def _pending_rows(self) -> dict[str, tuple[str, str]]:
        """``{key: (value text, digest)}`` of the side file (empty when there is none)."""
        try:
            text = self.pending_path.read_text()
        except FileNotFoundError:
            return {}
        return {row[0]: (row[2], row[5]) for row in _parse_pending(text).values()}


class _StoreLocked(ValueError):
    """Another process held the store locked through every try."""

    def __init__(self, path: Path, waited: float, tries: int):
        self.waited = waited
        super().__init__(
            f"results store {path} is locked by another process: still busy after {waited:.0f} s and {tries} tries; "
            "wait for the other run to finish (or close the program holding the file) and run again"
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_HEX]


def _row_problem(text: Any, digest: str | None) -> str:
    """Why a stored row cannot be trusted; '' when it can."""
    if not isinstance(text, str):
        return f"its value is {type(text).__name__}, not JSON text"
    try:
        json.loads(text)
    except ValueError as exc:
        return f"its value is not JSON: {exc}"
    if digest is not None and _digest(text) != digest:
        shown = text if len(text) <= 40 else text[:37] + "..."
        return f"its value {shown!r} is not what was written (digest mismatch)"
    return ""


def _parse_pending(text: str) -> dict[str, tuple]:
    """Rows of a pending file by key (the last line of a key wins); a torn last line is ignored."""
    rows = {}
    for line in text.splitlines():
        try:
            item = json.loads(line)
            row = (item["key"], item["kind"], item["value"], float(item["seconds"]), float(item["created"]),
                   item["digest"])
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a crash mid-write: its job simply runs again
        if _row_problem(row[2], row[5]):
            continue
        rows[row[0]] = row
    return rows


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _hint(exc: sqlite3.OperationalError) -> str:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return " (make the folder writable, or point TRANSFERLAB_HOME at a writable folder)"
    if "unable to open" in text:
        return " (check that its folder exists and is writable)"
    return ""


def _lease_alive(pid: int, host: str, expires: float, now: float) -> bool:
    """Whether a lease still binds: unexpired, and on this host only while its process lives."""
    if expires <= now:
        return False
    if host != socket.gethostname():
        return True
    return _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if os.name != "posix":  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
