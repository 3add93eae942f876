"""``stream``: iterate over a streaming generator task on any AnyIO backend.

Ray's ``ObjectRefGenerator.__anext__`` only works on asyncio; here the watcher
watches the ref the stream produces next (or its completion ref), no thread.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import ray

from ._core import _ray, _serve
from ._core._cancel import cancel_now
from ._core._checks import check_bool
from ._core._reports import watch_all
from ._core._single import fetch_one
from ._core._wakeup import checkpoint


def stream(gen: Any, *, values: bool = False) -> Stream:
    """Iterate over the items of a streaming generator task as they are produced.

    ``gen`` is the ``ObjectRefGenerator`` of a generator task or actor method
    (``num_returns="streaming"``). ``async for ref in stream(gen)`` yields each
    item's ObjectRef as soon as Ray has it; ``values=True`` yields the values.

    Errors: an exception raised by the generator, or a system failure, is a
    last item whose ref holds the error: raised at that item with
    ``values=True``, else wherever that ref is fetched. The iteration ends after it.

    Cancellation: each step is a checkpoint; cancelling a step leaves the
    stream usable and loses no item.

    Early exit: ``break`` out of a plain ``async for`` leaves the task running,
    as with Ray's own iteration. To stop it, use the stream as an async
    context manager or call :meth:`Stream.aclose` (``ray.cancel``, with
    ``force=False``, of a task that has not finished)::

        async with ray_anyio.stream(gen.remote(), values=True) as items:
            async for value in items:
                if value is None:
                    break  # the generator task is cancelled here

    A generator started with ``TaskScope.remote`` is also owned by its scope.

    Ray Serve: ``gen`` may be the ``DeploymentResponseGenerator`` of a
    streaming handle call (``handle.options(stream=True).method.remote()``).
    The first step waits, without blocking the loop, until Serve's router has
    given it a replica; closing the stream calls ``gen.cancel()`` (the
    replica sees its request cancelled).

    Raises:
        TypeError: ``gen`` is not an ``ObjectRefGenerator`` (or a Serve
            ``DeploymentResponseGenerator``), or ``values`` is not a bool.
    """
    if not isinstance(gen, ray.ObjectRefGenerator) and not (
        _serve.is_response_generator(gen)
    ):
        hint = ""
        if isinstance(gen, ray.ObjectRef) and _ray.in_client_mode():
            hint = (
                "; through Ray Client a generator task's .remote() returns a "
                "plain ref: Ray Client cannot stream generators (use "
                "num_returns='dynamic' and get(), or connect as a driver)"
            )
        elif _serve.is_response(gen):
            hint = (
                "; a unary Serve response is not a stream: get() it, or call "
                "handle.options(stream=True) for a generator method"
            )
        elif isinstance(gen, ray.ObjectRef):
            hint = (
                "; an ObjectRef is not a stream (a num_returns='dynamic' task "
                "returns one: use get() on it)"
            )
        raise TypeError(
            "gen must be the ObjectRefGenerator returned by a generator task's "
            f".remote(), got {type(gen).__name__}{hint}"
        )
    check_bool(values, "values")
    return Stream(gen, values)


class Stream:
    """The async iterator (and context manager) returned by :func:`stream`."""

    def __init__(self, gen: Any, values: bool) -> None:
        self._gen = gen
        # A Serve response: its ObjectRefGenerator replaces it at the first step.
        self._response = gen if _serve.is_response_generator(gen) else None
        self._values = values
        self._taken: ray.ObjectRef[Any] | None = None  # read, value not fetched
        self._ended = False
        self._entered = False

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        """The next item's ref (or value); see :func:`stream`.

        Raises:
            StopAsyncIteration: the generator has finished and every item has
                been read, or the stream was closed.
            Exception: with ``values=True``, the error of a failed item.
        """
        await checkpoint()
        if self._taken is None:
            if self._ended:
                raise StopAsyncIteration
            ref = await self._next_ref()
            if not self._values:
                return ref
            self._taken = ref
        try:
            value = await fetch_one(self._taken)
        except Exception:
            self._taken = None
            raise
        self._taken = None
        return value

    async def aclose(self) -> None:
        """End the iteration; cancel the generator task if it has not finished.

        A checkpoint; the stream is closed even if it is cancelled. Does not
        wait for the task to stop: Ray reports the cancellation as the error of
        the last item. After ``ray.shutdown()`` it only closes the stream.
        """
        self._taken = None
        if not self._ended:
            self._ended = True
            if self._response is not None:
                _serve.cancel_responses([self._response])
            else:
                cancel_now([self._gen])
        await checkpoint()

    async def __aenter__(self) -> Stream:
        """Enter the stream's block, once; leaving it calls :meth:`aclose`.

        Raises:
            RuntimeError: the stream's block was entered before.
        """
        if self._entered:
            raise RuntimeError(
                "a stream() block can only be entered once: call stream() again "
                "for a new one"
            )
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _next_ref(self) -> ray.ObjectRef[Any]:
        if self._response is not None and self._gen is self._response:
            self._gen = await _serve.ref_of(self._response)
        gen = self._gen
        while True:
            _ray.require_ray()  # the generator's own calls would not say so
            try:
                ref = _ray.stream_next_now(gen)
            except StopIteration:
                self._ended = True
                raise StopAsyncIteration from None
            if ref is not None:
                return ref
            await watch_all((_ray.stream_wait_ref(gen),))
