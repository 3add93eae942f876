"""The store behind ``map(..., checkpoint=path)``: one run's finished results.

One SQLite file per run, a row per finished input position keyed by a digest
of its arguments and of ``fn``; a rerun restores the rows that match. All of
it is synchronous disk I/O, no trio checkpoint: async callers pick the thread.
Restoring unpickles: open only files you trust.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import sqlite3
import sys
import types
from collections.abc import Callable
from typing import Any

from ray import cloudpickle

from ._core._outcome import Outcome

if sys.platform == "win32":
    import msvcrt

    def _flock(fd: int, lock: bool) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK if lock else msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _flock(fd: int, lock: bool) -> None:
        # flock belongs to the open file, so a second open in this very
        # process conflicts too; the kernel releases it when the process dies.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if lock else fcntl.LOCK_UN)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (position INTEGER PRIMARY KEY,
    digest TEXT NOT NULL, is_error INTEGER NOT NULL, payload BLOB NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('format', '1');
"""


class CheckpointBusyError(RuntimeError):
    """Another live run, in this process or another, holds the checkpoint file."""


def check_path(path: str | os.PathLike[str]) -> str:
    """Return ``path`` as a ``str`` if it can name a checkpoint file.

    Raises:
        TypeError: if ``path`` is not a ``str`` or an ``os.PathLike`` of one.
        ValueError: if it is empty or ``":memory:"``, or its directory does not
            exist.
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str):
        raise TypeError(
            f"checkpoint must be a str or os.PathLike path, got {type(path).__name__}"
        )
    if text in ("", ":memory:"):
        raise ValueError(f"checkpoint must name a file, got {text!r}")
    directory = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(directory):
        raise ValueError(f"checkpoint {text!r}: directory {directory!r} does not exist")
    return text


class Checkpoint:
    """One map run's store of finished results, in an SQLite file (WAL journal).

    Made on one thread, it may be used on another, by one thread at a time. A
    commit survives a killed process (SIGKILL): with WAL and
    ``synchronous=NORMAL`` the OS has it when :meth:`commit` returns, with no
    fsync per item. A power cut may lose the last commits, not the file.
    """

    def __init__(self, path: str, lock_fd: int) -> None:  # see open()
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._db: sqlite3.Connection | None = None
        self._fn_digest = ""

    @classmethod
    def open(cls, path: str | os.PathLike[str], fn_digest: str) -> Checkpoint:
        """Lock ``path`` for this run at once (never waits), open or create it.

        The lock is an OS lock on ``<path>.lock``, dropped by the kernel when
        its holder dies. Rows of another ``fn_digest`` stay and match nothing.

        Raises:
            TypeError: as :func:`check_path`.
            ValueError: as :func:`check_path`, or if the file is not a
                checkpoint (not a database, or another SQLite database).
            CheckpointBusyError: if another live run holds the file.
            OSError: if ``<path>.lock`` cannot be created.

        Example::

            with Checkpoint.open("run.sqlite", function_digest(fn)) as store:
                outcome = store.restored(0, (1, 2))
        """
        text = check_path(path)
        store = cls(text, _lock(text))
        try:
            # Autocommit: each statement is its own transaction, committed
            # before execute() returns.
            store._db = db = sqlite3.connect(
                text, isolation_level=None, check_same_thread=False
            )
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:
                raise ValueError(f"checkpoint {text!r} is another SQLite database")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('fn', ?)", (fn_digest,))
        except sqlite3.Error as exc:
            store.close()
            raise ValueError(f"checkpoint {text!r} is not usable: {exc}") from exc
        except BaseException:
            store.close()
            raise
        store._fn_digest = fn_digest
        return store

    def restored(self, position: int, args: tuple[Any, ...]) -> Outcome | None:
        """The stored outcome of input ``position``, or None to compute it again.

        None if nothing is stored there, if its digest differs (``args`` or
        ``fn`` changed) or if it no longer unpickles (a class moved since).

        Raises:
            TypeError: if a row is stored there and ``args`` cannot be pickled.
            RuntimeError: if the checkpoint is closed.
        """
        query = "SELECT digest, is_error, payload FROM items WHERE position=?"
        row = self._connection().execute(query, (position,)).fetchone()
        if row is None or row[0] != self._digest(position, args):
            return None
        try:
            payload = cloudpickle.loads(row[2])
        except Exception:
            return None
        if not row[1]:
            return Outcome(payload)
        return Outcome(error=payload) if isinstance(payload, Exception) else None

    def commit(self, position: int, args: tuple[Any, ...], outcome: Outcome) -> None:
        """Store input ``position``'s value or error in place of any; committed.

        Raises:
            TypeError: naming ``position`` and the type, if the value, the
                error or ``args`` cannot be pickled; nothing is stored for
                ``position`` then, and every other row stays as it was.
            RuntimeError: if the checkpoint is closed.
        """
        db = self._connection()
        digest = self._digest(position, args)
        is_error = outcome.error is not None
        obj = outcome.error if is_error else outcome.value
        try:
            payload = cloudpickle.dumps(obj, protocol=5)
        except Exception as exc:
            raise TypeError(
                f"checkpoint cannot store the {'error' if is_error else 'result'} "
                f"of input {position}: {type(obj).__name__} cannot be pickled ({exc})"
            ) from exc
        db.execute(
            "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?)",
            (position, digest, int(is_error), payload),
        )

    def count(self) -> int:
        """How many items are stored. Raises ``RuntimeError`` if closed."""
        (n,) = self._connection().execute("SELECT COUNT(*) FROM items").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the file, then release the lock; closing again does nothing."""
        db, self._db = self._db, None
        lock_fd, self._lock_fd = self._lock_fd, None
        if db is not None:
            db.close()
        if lock_fd is not None:
            _flock(lock_fd, False)  # a forked child's copy of the fd would keep it
            os.close(lock_fd)

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"checkpoint {self.path!r} is closed")
        return self._db

    def _digest(self, position: int, args: tuple[Any, ...]) -> str:
        try:
            digest = args_digest(args)
        except Exception as exc:
            msg = f"checkpoint cannot key input {position}, its arguments: {exc}"
            raise TypeError(msg) from exc
        return _sha256(f"{self._fn_digest}:{digest}".encode())


def _lock(path: str) -> int:
    # The lock file stays: removing it would let a waiter lock an unlinked file.
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _flock(fd, True)
    except OSError as exc:
        os.close(fd)
        if isinstance(exc, (BlockingIOError, PermissionError)):
            raise CheckpointBusyError(
                f"checkpoint {path!r} is in use: another run holds it (lock file "
                f"{path + '.lock'!r}); wait for that run to end or use another file"
            ) from None
        raise
    return fd


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def args_digest(args: tuple[Any, ...]) -> str:
    """The sha256 of ``cloudpickle.dumps(args)``; raises what pickling raises.

    Inputs should be plain values: an ``ObjectRef`` has a new id each run, and
    a set of strings may pickle in another order in another process, so such
    inputs match nothing and are computed again.
    """
    return _sha256(cloudpickle.dumps(args, protocol=5))


def function_digest(fn: Callable[..., Any]) -> str:
    """A digest of ``fn`` that changes when its code changes.

    A function: its module, qualname, code (bytecode, constants, nested code,
    names), defaults and closure; not the code it calls nor the globals it
    reads (after changing those, use a new file). A partial: its function and
    arguments; a bound method: its function and ``self``; an object with a
    Python ``__call__``: that and its pickle; else (a builtin) its pickle. A
    part that cannot be pickled matches nothing. Unwrap a remote function.
    """
    parts: tuple[Any, ...]
    call = type(fn).__call__ if callable(fn) else None
    if isinstance(fn, functools.partial):
        parts = ("partial", function_digest(fn.func), _value((fn.args, fn.keywords)))
    elif isinstance(fn, types.MethodType):
        parts = ("method", function_digest(fn.__func__), _value(fn.__self__))
    elif isinstance(fn, types.FunctionType):
        state = _value((fn.__defaults__, fn.__kwdefaults__, fn.__closure__))
        parts = ("function", fn.__module__, fn.__qualname__, _code(fn.__code__), state)
    elif isinstance(call, types.FunctionType):
        parts = ("object", function_digest(call), _value(fn))
    else:
        parts = ("other", _value(fn))
    return _sha256(repr(parts).encode())


def _code(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(_constant(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names, code.co_varnames)


def _constant(const: object) -> object:
    if isinstance(const, types.CodeType):
        return _code(const)
    if isinstance(const, tuple):
        return tuple(_constant(c) for c in const)
    if isinstance(const, frozenset):
        # `x in {"a", "b"}` compiles to a frozenset, ordered by the string
        # hash of this process: sorted, or a rerun's digest would not match.
        return tuple(sorted(repr(_constant(c)) for c in const))
    return repr(const)


def _value(obj: object) -> str:
    try:
        return _sha256(cloudpickle.dumps(obj, protocol=5))
    except Exception:
        return "unpicklable:" + secrets.token_hex(16)
