"""Leases of a process's open channel handles, renewed by one thread.

The channel's actor closes a handle whose lease has run out: that is how a
channel learns that a task or actor holding a handle died without closing
it. Every process renews the leases of the handles it holds, one actor call
per channel per round, from one thread (a job on the ``LEASES`` lane) that
exits once the process holds no open handle.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._core import _ray
from ._core._threads import Lane, gated

#: The one lane of lease renewals: a single long job at a time.
LEASES = Lane("channel-leases", 1)

_cond = threading.Condition()
#: channel key -> (actor, lease seconds, session, ids of open handles held here)
_held: dict[str, tuple[Any, float, object, set[str]]] = {}
#: channel key -> when its leases are next renewed (time.monotonic())
_due: dict[str, float] = {}
_running = False


def hold(key: str, actor: Any, lease: float, hid: str) -> None:
    """Renew ``hid``'s lease from now on, until :func:`release`."""
    global _running
    session = _ray.session()
    with _cond:
        entry = _held.get(key)
        if entry is None or entry[2] is not session:
            entry = _held[key] = (actor, lease, session, set())
            _due[key] = time.monotonic()  # a new channel: renew at once
            _cond.notify()
        entry[3].add(hid)
        if not _running:
            _running = True
            LEASES.submit(_renew_all)


def release(key: str, hid: str) -> None:
    """Stop renewing ``hid``'s lease (its handle is closed)."""
    with _cond:
        entry = _held.get(key)
        if entry is not None:
            entry[3].discard(hid)
            if not entry[3]:
                del _held[key]
                _due.pop(key, None)


def held() -> int:
    """How many open handles this process renews leases for."""
    with _cond:
        return sum(len(entry[3]) for entry in _held.values())


def _renewal(actor: Any, ids: list[str]) -> Any:
    def renew() -> None:
        # Not waited for: a lost renewal is made up for by the next one. The
        # ref is dropped here, inside the gate.
        actor.renew.remote(ids)

    return renew


def _renew_all() -> None:
    """Renew each channel's leases every quarter of its lease, until none."""
    global _running
    while True:
        with _cond:
            if not _held:
                _running = False
                return
            now = time.monotonic()
            wait = min(_due.values()) - now
            if wait > 0:
                _cond.wait(wait)
                continue
            live = _ray.session()
            jobs = []
            for key, (actor, lease, session, ids) in list(_held.items()):
                if session is not live:
                    del _held[key]  # its Ray has gone
                    _due.pop(key, None)
                elif _due[key] <= now:
                    _due[key] = now + lease / 4
                    jobs.append(gated(session, _renewal(actor, list(ids)), _nothing))
        for job in jobs:
            job()


def _nothing() -> None:
    return None
