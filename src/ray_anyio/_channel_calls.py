"""One channel operation, written once as steps, run async or blocking.

An operation is a generator that yields ``(kind, ref)`` for each actor call
it waits on and gets the call's reply back:

* ``WAIT``: a wait that may be interrupted. A cancellation (async) or the
  timeout (blocking) is thrown into the generator at that step, which takes
  its call back (``withdraw``) before it lets the exception go on.
* ``MUST``: a call that answers at once and must be seen to its end, so that
  the caller knows where its item is: awaited shielded, or without timeout.

An actor that has gone (the channel's block has exited) is
``BrokenResourceError`` at the step that called it.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from ray.exceptions import GetTimeoutError, RayError

from ._core import _ray
from ._core._single import fetch_one

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

T = TypeVar("T")

WAIT = "wait"
MUST = "must"

Steps = Generator[tuple[str, "Ref"], Any, T]


def gone(error: BaseException) -> anyio.BrokenResourceError:
    """The error of a call to a channel whose actor has gone."""
    broken = anyio.BrokenResourceError(
        "the channel has gone: its open_channel() block has exited (or its "
        f"actor died): {type(error).__name__}"
    )
    broken.__cause__ = error
    return broken


async def run_async(steps: Steps[T]) -> T:
    """Run ``steps`` on the event loop; cancellation is thrown in at a ``WAIT``."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            kind, ref = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        reply = error = None
        try:
            if kind == MUST:
                with anyio.CancelScope(shield=True):
                    reply = await fetch_one(ref)
            else:
                reply = await fetch_one(ref)
        except RayError as exc:
            error = gone(exc)
        except BaseException as exc:
            error = exc
        del ref


def run_sync(steps: Steps[T], timeout: float | None) -> T:
    """Run ``steps`` blocking this thread; ``TimeoutError`` is thrown in at a
    ``WAIT`` once ``timeout`` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            kind, ref = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        reply = error = None
        try:
            if kind == MUST or deadline is None:
                reply = _ray.get(ref)
            else:
                reply = _ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
        except GetTimeoutError:
            error = TimeoutError(f"the channel did not answer within {timeout} s")
        except RayError as exc:
            error = gone(exc)
        except BaseException as exc:
            error = exc
        del ref
