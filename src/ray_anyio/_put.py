"""``put``: ``ray.put`` without stalling the event loop on large values."""

from __future__ import annotations

from functools import partial
from typing import Any, TypeVar

import ray

from ._core import _ray, _threads
from ._core._wakeup import checkpoint

T = TypeVar("T")

#: Values known to be at most this many bytes are put on the loop thread: a
#: thread hop would only add to ``ray.put``'s fixed cost (a round trip to the
#: object store); pickling much more would hold the loop for milliseconds.
INLINE_PUT_MAX = 1 << 20


async def put(value: T) -> ray.ObjectRef[T]:
    """Store ``value`` in the object store and return its ref, like ``ray.put``.

    Values known without serialising to be at most ``INLINE_PUT_MAX`` bytes
    (``None``, numbers, ``str``, ``bytes``, anything with an int ``nbytes``)
    are put on the loop thread, the rest on a shared thread: the loop runs on.

    This is a checkpoint. A cancellation while a value is stored on the thread
    waits for that to finish, drops the ref (freeing the object) and propagates.

    Raises:
        TypeError: ``value`` is an ObjectRef, or cannot be serialised (as
            ``ray.put`` raises).
        ray.exceptions.RaySystemError: Ray is not running (it is never started).

    Example::

        ref = await ray_anyio.put(big_array)
        result = await ray_anyio.get(process.remote(ref))
    """
    size = _known_size(value)
    if size is not None and size <= INLINE_PUT_MAX:
        await checkpoint()
        return _ray.put(value)
    # The value may hold refs: the gated job drops it inside the gate.
    job = _threads.gated(_ray.session(), partial(_ray.put, value))
    del value
    ref: ray.ObjectRef[T] = await _threads.run(_threads.FETCH, job)
    return ref


def _known_size(value: Any) -> int | None:
    """Bytes ``value`` occupies when that is known cheaply, else None."""
    if value is None or isinstance(value, (bool, float, complex)):
        return 0
    if isinstance(value, int):
        return value.bit_length() // 8
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, str):
        return 4 * len(value)  # the most a code point can take in UTF-8
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int) and not isinstance(nbytes, bool):
        return nbytes
    return None
