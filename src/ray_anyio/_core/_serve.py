"""Ray Serve's responses as refs: every private Serve name, behind feature checks.

A ``DeploymentResponse`` is awaitable on asyncio only; ``.result()`` blocks.
Here it becomes the ``ObjectRef`` of its replica's call once Serve's router (a
thread of its own) has assigned it, then takes the path of any ref. The
router's future calls back: the loop is woken once per burst, never blocked.
Serve is never imported here: its classes come from ``sys.modules``.

Private Serve names (``docs/architecture.md``):

* ``_replica_result_future``: the router's ``concurrent.futures.Future``
  (every supported Ray). Not one (a router on the caller's asyncio loop):
  Serve's ``_to_object_ref``/``_to_object_ref_gen`` coroutines on asyncio.
* ``_to_object_ref_sync``/``_to_object_ref_gen_sync(_timeout_s=0,
  _allow_running_in_asyncio_loop=True)``: the ref (generator) of an assigned
  response, at once on Ray 2.60 (Serve peeks it at assignment). Before, it
  may come later (``TimeoutError``): the blocking form then runs on a worker
  thread; the keyword is passed only where the signature has it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from . import _ray
from ._first_error import FirstErrorGroup
from ._log import logger
from ._outcome import Outcome
from ._wakeup import current_loop, current_waker

if TYPE_CHECKING:
    import ray

    Ref = ray.ObjectRef[Any]

_types: tuple[type, type] | None = None


def _serve_types() -> tuple[type, type] | None:
    """``(DeploymentResponse, DeploymentResponseGenerator)`` once Serve is imported."""
    global _types
    if _types is None:
        handle = sys.modules.get("ray.serve.handle")
        unary = getattr(handle, "DeploymentResponse", None)
        streaming = getattr(handle, "DeploymentResponseGenerator", None)
        if isinstance(unary, type) and isinstance(streaming, type):
            _types = (unary, streaming)  # a partly imported module: ask again
    return _types


def is_response(obj: object) -> bool:
    """Whether ``obj`` is a Serve ``DeploymentResponse`` (unary)."""
    types = _types or _serve_types()
    return types is not None and isinstance(obj, types[0])


def is_response_generator(obj: object) -> bool:
    """Whether ``obj`` is a Serve ``DeploymentResponseGenerator`` (``stream=True``)."""
    types = _types or _serve_types()
    return types is not None and isinstance(obj, types[1])


def _future(response: Any) -> concurrent.futures.Future[Any] | None:
    fut = getattr(response, "_replica_result_future", None)
    return fut if isinstance(fut, concurrent.futures.Future) else None


def assigned(response: Any) -> bool:
    """Whether Serve's router has given ``response`` a replica (or failed to)."""
    fut = _future(response)
    return fut is not None and fut.done()


# --- the ref of an assigned response ---------------------------------------------
def _takes_allow_keyword(method: Any) -> bool:
    return "_allow_running_in_asyncio_loop" in inspect.signature(method).parameters


#: ``{name of the sync method: whether it takes the keyword}``, per Ray.
_ALLOW: dict[str, bool] = {}


def _sync_call(response: Any, name: str) -> Callable[..., Any]:
    method = getattr(response, name)
    allow = _ALLOW.get(name)
    if allow is None:
        allow = _ALLOW[name] = _takes_allow_keyword(method)
    return partial(method, _allow_running_in_asyncio_loop=True) if allow else method


#: The ref each response became: ``disown`` of a ref finds its response.
_responses_of: weakref.WeakValueDictionary[Any, Any] = weakref.WeakValueDictionary()


def response_of(ref: Ref) -> Any:
    """The response whose ref is ``ref`` (converted here), else None."""
    return _responses_of.get(ref)


def _now(response: Any) -> Any:
    """The ref (or generator) of an assigned response; ``TimeoutError`` if not yet.

    Raises what the assignment raised (``RequestCancelledError`` for a
    cancelled request, ``DeploymentUnavailableError``...).
    """
    if is_response_generator(response):
        return _sync_call(response, "_to_object_ref_gen_sync")(_timeout_s=0)
    ref = _sync_call(response, "_to_object_ref_sync")(_timeout_s=0)
    _responses_of[ref] = response
    return ref


async def _later(response: Any) -> Any:
    """The ref (generator, or value) of a response the fast path cannot take."""
    generator = is_response_generator(response)
    if not getattr(response, "by_reference", True):
        if generator:
            raise TypeError(
                "this DeploymentResponseGenerator sends its items by value, not as "
                "Ray refs: iterate over it on asyncio instead"
            )
        # Serve gives no ref for it: its value, waited for on a worker thread.
        result = partial(response.result, _skip_asyncio_check=True)
        return await anyio.to_thread.run_sync(result, abandon_on_cancel=True)
    on_asyncio = isinstance(current_loop(), asyncio.AbstractEventLoop)
    if _future(response) is None and on_asyncio:  # the router runs on this loop
        convert = response._to_object_ref_gen if generator else response._to_object_ref
        return await convert()
    name = "_to_object_ref_gen_sync" if generator else "_to_object_ref_sync"
    blocking = getattr(response, name)  # on a worker thread, where it may block
    ref = await anyio.to_thread.run_sync(blocking, abandon_on_cancel=True)
    if not generator:
        _responses_of[ref] = response
    return ref


async def _bursts(responses: Sequence[Any], take: Callable[[list[int]], None]) -> None:
    """Call ``take(positions)`` for each burst of responses the router assigns.

    Its futures call back on the router's thread; the loop is woken once per
    burst. Those without such a future are taken at once. Cancellation
    leaves the requests running (the callbacks then wake nobody).
    """
    pending: list[tuple[int, concurrent.futures.Future[Any]]] = []
    now: list[int] = []
    for position, response in enumerate(responses):
        fut = _future(response)
        if fut is None or fut.done():
            now.append(position)
        else:
            pending.append((position, fut))
    if now:
        take(now)
    if not pending:
        return
    arrived: deque[int] = deque()
    lock = threading.Lock()
    woken = [False]
    event = [anyio.Event()]
    wake = current_waker()

    def set_event() -> None:
        event[0].set()

    def done(position: int, _: object) -> None:  # on the router's thread
        arrived.append(position)
        with lock:
            if woken[0]:
                return
            woken[0] = True
        wake(set_event)

    for position, fut in pending:
        fut.add_done_callback(partial(done, position))
    left = len(pending)
    while left:
        await event[0].wait()
        event[0] = anyio.Event()
        with lock:
            woken[0] = False  # a later arrival wakes the new event
        burst = [arrived.popleft() for _ in range(len(arrived))]
        left -= len(burst)
        take(burst)


async def each_ref(
    responses: Sequence[Any], found: Callable[[int, Outcome], None]
) -> None:
    """Call ``found(position, outcome)`` for each response once it has its ref.

    ``outcome`` holds the ref (a generator's ``ObjectRefGenerator``; a value
    if Serve sends it by value), or the assignment's error
    (``RequestCancelledError`` for a cancelled request). In bursts, as the
    router assigns them, never blocking the loop; a ref not to be had at once
    (older Rays) is waited for on a worker thread. ``found`` may raise.

    Cancellation leaves the requests running: cancelling them is a scope's.
    """
    slow: list[int] = []

    def take(positions: list[int]) -> None:
        for position in positions:
            try:
                ref = _now(responses[position])
            except (TimeoutError, RuntimeError):
                slow.append(position)  # not at once on this Ray: below
            except Exception as exc:
                found(position, Outcome(error=exc))
            else:
                found(position, Outcome(ref))

    async def later(position: int) -> None:
        try:
            ref = await _later(responses[position])
        except Exception as exc:
            found(position, Outcome(error=exc))
        else:
            found(position, Outcome(ref))

    await _bursts(responses, take)
    if slow:
        async with FirstErrorGroup() as group:
            for position in slow:
                group.start_soon(later, position)


async def refs_of(responses: Sequence[Any]) -> list[Any]:
    """Each response's ref (see :func:`each_ref`), in order, once all have one.

    A checkpoint if one is not assigned yet. Raises the first assignment's
    error as it comes (``RequestCancelledError`` for a cancelled request).
    """
    refs: list[Any] = [None] * len(responses)

    def found(position: int, outcome: Outcome) -> None:
        refs[position] = outcome.unwrap()

    await each_ref(responses, found)
    return refs


async def ref_of(response: Any) -> Any:
    """:func:`refs_of` of one response: its ref (a value if Serve sends it so)."""
    return (await refs_of((response,)))[0]


# --- cancellation ----------------------------------------------------------------
def ref_now(response: Any) -> Ref | None:
    """The ref of an assigned response (a generator's: its completion ref), else None.

    None too if its ref comes later; the ref is ready once the call has ended.
    """
    if not assigned(response):
        return None
    try:
        ref = _now(response)
    except Exception:  # its assignment failed, or the ref comes later
        return None
    return _ray.generator_completed(ref) if is_response_generator(response) else ref


def cancel_responses(responses: Sequence[Any]) -> None:
    """``response.cancel()`` on each response; not a checkpoint, never raises.

    A response not assigned yet is withdrawn from the router; an assigned one
    is cancelled on its replica (an ``async`` method sees CancelledError).
    """
    for response in responses:
        try:
            response.cancel()
        except Exception as exc:
            logger.debug("cancelling a Serve response failed: %r", exc)
