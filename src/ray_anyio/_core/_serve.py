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
  may come later (``TimeoutError``; Serve's stream under the call yields it
  at its end): the blocking form then runs on a thread once per response, and
  the loop leaves Serve's lock to it. The keyword is passed where it is taken.
* ``_replica_result._obj_ref_gen``: that stream; ready once the call has ended.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import ray

from . import _ray
from ._first_error import FirstErrorGroup
from ._log import logger
from ._outcome import Outcome
from ._wakeup import current_loop, current_waker

if TYPE_CHECKING:
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
    return (types := _types or _serve_types()) is not None and isinstance(obj, types[0])


def is_response_generator(obj: object) -> bool:
    """Whether ``obj`` is a Serve ``DeploymentResponseGenerator`` (``stream=True``)."""
    return (types := _types or _serve_types()) is not None and isinstance(obj, types[1])


def _future(response: Any) -> Future[Any] | None:
    fut = getattr(response, "_replica_result_future", None)
    return fut if isinstance(fut, Future) else None


def assigned(response: Any) -> bool:
    """Whether Serve's router has given ``response`` a replica (or failed to)."""
    return (fut := _future(response)) is not None and fut.done()


# --- the ref of an assigned response ---------------------------------------------
def _takes_allow_keyword(method: Any) -> bool:
    return "_allow_running_in_asyncio_loop" in inspect.signature(method).parameters


#: ``{name of the sync method: whether it takes the keyword}``, per Ray.
_ALLOW: dict[str, bool] = {}


def _sync_call(response: Any, name: str) -> Callable[..., Any]:
    method = getattr(response, name)
    if (allow := _ALLOW.get(name)) is None:
        allow = _ALLOW[name] = _takes_allow_keyword(method)
    return partial(method, _allow_running_in_asyncio_loop=True) if allow else method


#: The ref each response became: ``disown`` of a ref finds its response.
_responses_of: weakref.WeakValueDictionary[Any, Any] = weakref.WeakValueDictionary()


def response_of(ref: Ref) -> Any:
    """The response whose ref is ``ref`` (converted here), else None."""
    return _responses_of.get(ref)


#: The conversions (refs that come later), one per response, each on a thread
#: of its own: it blocks while its call runs, which may wait for other calls.
_converting: weakref.WeakKeyDictionary[Any, Future[Any]] = weakref.WeakKeyDictionary()


def _now(response: Any) -> Any:
    """The ref (generator) of an assigned response, else TimeoutError (or its error)."""
    converting = _converting.get(response)
    if converting is not None:  # never wait for Serve's lock its thread holds
        if not converting.done():
            raise TimeoutError("the ref of this response comes later")
        return converting.result()
    if is_response_generator(response):
        return _sync_call(response, "_to_object_ref_gen_sync")(_timeout_s=0)
    ref = _sync_call(response, "_to_object_ref_sync")(_timeout_s=0)
    _responses_of[ref] = response
    return ref


async def _later(response: Any) -> Any:
    """The ref (generator, or value) of a response the fast path cannot take."""
    generator = is_response_generator(response)
    if not getattr(response, "by_reference", True):  # no ref: its value, on a thread
        if generator:
            raise TypeError(
                "this DeploymentResponseGenerator sends its items by value, not as "
                "Ray refs: iterate over it on asyncio instead"
            )
        result = partial(response.result, _skip_asyncio_check=True)
        return await anyio.to_thread.run_sync(result, abandon_on_cancel=True)
    on_asyncio = isinstance(current_loop(), asyncio.AbstractEventLoop)
    if _future(response) is None and on_asyncio:  # the router runs on this loop
        convert = response._to_object_ref_gen if generator else response._to_object_ref
        return await convert()
    converting = _converting.get(response)
    if converting is None:  # left running if cancelled
        name = "_to_object_ref_gen_sync" if generator else "_to_object_ref_sync"
        converting = _converting[response] = Future()
        work = partial(_convert, converting, getattr(response, name))
        threading.Thread(target=work, name="ray_anyio-serve-ref", daemon=True).start()
    await _bursts([converting], lambda _: None)
    ref = converting.result()
    if not generator:
        _responses_of[ref] = response
    return ref


def _convert(future: Future[Any], blocking: Callable[[], Any]) -> None:
    try:
        future.set_result(blocking())
    except BaseException as exc:
        future.set_exception(exc)


async def _bursts(responses: Sequence[Any], take: Callable[[list[int]], None]) -> None:
    """Call ``take(positions)`` for each burst of responses the router assigns.

    Its futures (or futures given instead) call back on other threads; the
    loop is woken once per burst. Those without one are taken at once.
    Cancellation leaves them be (the callbacks then wake nobody).
    """
    pending: list[tuple[int, Future[Any]]] = []
    now: list[int] = []
    for position, item in enumerate(responses):
        fut = item if isinstance(item, Future) else _future(item)
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

    def done(position: int, _: object) -> None:  # on another thread
        arrived.append(position)
        with lock:
            if woken[0]:
                return
            woken[0] = True
        wake(lambda: event[0].set())

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
    if Serve sends it by value) or the error (``RequestCancelledError``...),
    in bursts as the router assigns them (on older Rays, later: from a thread).
    ``found`` may raise. Cancellation leaves the requests running.
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
    """Each response's ref (see :func:`each_ref`), in order; the first error raised."""
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


def end_ref(response: Any) -> Ref | None:
    """:func:`ref_now`; if its ref comes later, one ready once the call has ended."""
    if (ref := ref_now(response)) is not None:
        return ref
    stream = getattr(getattr(response, "_replica_result", None), "_obj_ref_gen", None)
    if isinstance(stream, ray.ObjectRefGenerator):
        return _ray.generator_completed(stream)
    return None


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
