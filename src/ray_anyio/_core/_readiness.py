"""How this process learns that a ref is ready: one seam, two implementations.

The hook, ``ObjectRef._on_ready`` (Ray 2.60+, not through Ray Client), or
the poller (:mod:`._poller`). Only the watcher calls :func:`register`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _ray
from ._poller import POLLER, Callback, Withdraw

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

__all__ = [
    "Callback",
    "Withdraw",
    "register",
    "split_local",
    "split_ready",
    "uses_hook",
]

#: Tests set this to False to run the hook's users through the poller.
PREFER_HOOK = True


def uses_hook() -> bool:
    """Whether registrations made now go to Ray's hook (else to the poller)."""
    return PREFER_HOOK and _ray.HAS_ON_READY and not _ray.in_client_mode()


def register(ref: Ref, fetch_local: bool, callback: Callback, hook: bool) -> Withdraw:
    """Have ``callback`` called once ``ref`` is ready; return its withdrawal.

    With ``hook`` "ready" means the object exists somewhere (the caller checks
    locality), else ready as ``ray.wait(fetch_local=fetch_local)`` says.
    """
    if hook:
        return _ray.on_ready(ref, callback)
    return POLLER.add(ref, fetch_local, callback)


def split_ready(
    refs: Sequence[Ref], *, fetch_local: bool
) -> tuple[list[Ref], list[Ref]]:
    """Split distinct refs into (ready now, not ready) with one ``ray.wait``."""
    if not refs:
        return [], []
    ready: list[Ref]
    pending: list[Ref]
    ready, pending = _ray.wait(
        list(refs), num_returns=len(refs), timeout=0, fetch_local=fetch_local
    )
    return ready, pending


def split_local(refs: list[Ref]) -> tuple[list[Ref], list[Ref]]:
    """Split distinct refs known to exist into (on this node, not here yet)."""
    known = _ray.objects()
    if known is None:
        return split_ready(refs, fetch_local=True)
    local: list[Ref] = []
    remote: list[Ref] = []
    for ref in refs:
        (local if known.here(ref) else remote).append(ref)
    return local, remote
