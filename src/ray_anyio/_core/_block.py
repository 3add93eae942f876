"""The async context manager a verb hands out: an ``asynccontextmanager``, once.

A second ``async with`` of it is a clear ``RuntimeError``, not contextlib's
``AttributeError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Generic, NoReturn, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class Block(AbstractAsyncContextManager[T], Generic[T]):
    """One ``async with`` of a generator-based context manager."""

    __slots__ = ("_cm", "_entered", "_name")

    def __init__(self, cm: AbstractAsyncContextManager[T], name: str) -> None:
        self._cm = cm
        self._name = name
        self._entered = False

    async def __aenter__(self) -> T:
        if self._entered:
            raise RuntimeError(
                f"a {self._name}() block can only be entered once: "
                f"call {self._name}() again for a new one"
            )
        self._entered = True
        return await self._cm.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._cm.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> NoReturn:
        """Raise: ``async for`` over the block itself is a slip (``TypeError``)."""
        raise TypeError(
            f"a {self._name}() block is not an iterator: write `async with "
            f"{self._name}(...) as results:` and `async for ... in results` in it"
        )


class SwallowingBlock(Block[T]):
    """A block that can swallow its own cancellation, as a trio cancel scope.

    Typed so, ``-> bool``, type checkers treat code after it as reachable.
    """

    __slots__ = ()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return bool(await self._cm.__aexit__(exc_type, exc, tb))


def block(
    name: str,
) -> Callable[[Callable[P, AsyncIterator[T]]], Callable[P, Block[T]]]:
    """Decorate an async generator function like ``asynccontextmanager``."""

    def decorate(fn: Callable[P, AsyncIterator[T]]) -> Callable[P, Block[T]]:
        cm = asynccontextmanager(fn)

        def make(*args: P.args, **kwargs: P.kwargs) -> Block[T]:
            return Block(cm(*args, **kwargs), name)

        return make

    return decorate
