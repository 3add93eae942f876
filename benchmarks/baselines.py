"""What a user would pick instead of ray-anyio: the shared baseline contenders.

* ``ray.get`` itself, blocking the loop (timed by the scenarios directly);
* Ray's native asyncio bridge, ``await ref`` / ``asyncio.gather(*refs)``;
* ``anyio.to_thread.run_sync(ray.get, ...)``, on either backend;
* on trio, Ray's asyncio bridge through trio-asyncio (``aio_as_trio``), if
  the optional package ``trio-asyncio`` is installed.

trio-asyncio is imported by name at run time: it ships no type information,
and the bench runs without it (its baselines are then left out). Importing it
patches asyncio for the whole process (its event loop policy, and
``asyncio.new_event_loop``/``_get_running_loop``, so that every later
``asyncio.run`` would run on a trio-asyncio loop, and every asyncio checkpoint
would ask trio first): that would slow down, or break, every asyncio contender
that runs after it. :func:`run_in_trio_asyncio` therefore installs its patches
only for the duration of its own runs (:func:`_trio_asyncio_installed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Awaitable, Callable, Iterator
from types import ModuleType
from typing import Any

import anyio
import anyio.to_thread
import ray

#: Names of the alternatives, as the rows' baselines and the plot call them.
TO_THREAD = "to_thread"
TRIO_ASYNCIO = "trio-asyncio"


def has_trio_asyncio(backends: list[str]) -> bool:
    """Whether trio-asyncio (and trio) are installed, so its baselines run."""
    return "trio" in backends and importlib.util.find_spec("trio_asyncio") is not None


def to_thread_name(backend: str) -> str:
    """The baseline's name for ``to_thread`` on ``backend``."""
    return f"{TO_THREAD} ({backend})"


async def to_thread_get(obj: Any) -> Any:
    """``ray.get(obj)`` in AnyIO's worker thread (what a user writes by hand)."""
    return await anyio.to_thread.run_sync(ray.get, obj)


async def await_ref(ref: ray.ObjectRef[Any]) -> Any:
    """Ray's native bridge: ``await ref`` (an asyncio coroutine)."""
    return await ref


Patch = dict[tuple[ModuleType, str], Any]
#: asyncio's attributes as trio-asyncio patches them, and as they were.
_PATCHES: tuple[Patch, Patch] | None = None


def _asyncio_attributes() -> Patch:
    modules = [m for n, m in sys.modules.items() if n.split(".")[0] == "asyncio"]
    return {(m, name): value for m in modules for name, value in vars(m).items()}


def _trio_asyncio_patches() -> tuple[Patch, Patch]:
    """Import trio-asyncio, undo its patches of asyncio, and keep both sets."""
    global _PATCHES
    if _PATCHES is None:
        before = _asyncio_attributes()
        importlib.import_module("trio_asyncio")
        after = _asyncio_attributes()
        patched = {k: v for k, v in after.items() if before.get(k, after) is not v}
        original = {k: before[k] for k in patched}
        _apply(original)
        _PATCHES = patched, original
    return _PATCHES


def _apply(attributes: Patch) -> None:
    for (module, name), value in attributes.items():
        setattr(module, name, value)


@contextlib.contextmanager
def _trio_asyncio_installed() -> Iterator[Any]:
    patched, original = _trio_asyncio_patches()
    _apply(patched)
    try:
        yield importlib.import_module("trio_asyncio")
    finally:
        _apply(original)


def run_in_trio_asyncio(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``await fn(*args)`` in a new trio run hosting a trio-asyncio loop.

    ``fn`` is trio code; it may call :func:`aio` to run asyncio code such as
    Ray's ``await ref`` on the hosted loop.
    """
    import trio

    with _trio_asyncio_installed() as trio_asyncio:

        async def host() -> Any:
            async with trio_asyncio.open_loop():
                return await fn(*args)

        return trio.run(host)


def aio(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``fn`` (asyncio code) as trio code, for :func:`run_in_trio_asyncio`."""
    _trio_asyncio_patches()  # imported, and its patches undone
    trio_asyncio: Any = sys.modules["trio_asyncio"]
    wrapped: Callable[..., Awaitable[Any]] = trio_asyncio.aio_as_trio(fn)
    return wrapped


def gather_refs(refs: list[ray.ObjectRef[Any]]) -> Awaitable[list[Any]]:
    """``asyncio.gather(*refs)``: Ray's native way to await a list."""
    return asyncio.gather(*refs)
