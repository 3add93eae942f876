"""Every private Ray API ray-anyio uses, each behind a feature check.

Nothing else touches ``ray._private``, ``ray._raylet`` or underscore methods;
each private name sits beside its public fallback (``docs/architecture.md``).
``ray.get``/``wait``/``cancel``/``put`` start Ray when it is not running; a
library must not, so :data:`get` etc. here raise ``RaySystemError`` instead.
"""

from __future__ import annotations

import atexit
import functools
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

import ray
from ray.exceptions import RaySystemError

from ._gate import Gate

if TYPE_CHECKING:
    Ref = ray.ObjectRef[Any]

F = TypeVar("F", bound=Callable[..., Any])

NOT_RUNNING = (
    "Ray is not running (ray.shutdown() was called, or ray.init() never was); "
    "ray_anyio never starts or joins a Ray on its own: call ray.init() first"
)


def not_running() -> RaySystemError:
    """The error every API raises when Ray is not running."""
    return RaySystemError(NOT_RUNNING)


def ray_is_running() -> bool:
    """Whether Ray is initialised (or Ray Client connected) in this process."""
    return session() is not None


def require_ray() -> None:
    """Raise ``RaySystemError`` unless Ray is initialised in this process."""
    if not ray_is_running():
        raise not_running()


# --- calls that never start Ray ------------------------------------------------
def _without_auto_init(fn: F) -> F:
    # Ray's auto-init wrapper (made with functools.wraps) wraps a function that
    # raises RaySystemError when Ray is not connected and still dispatches to
    # Ray Client. The fallback checks first (Ray may stop between the two).
    inner = getattr(fn, "__wrapped__", None)
    if callable(inner):
        return inner  # type: ignore[no-any-return]

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        require_ray()
        return fn(*args, **kwargs)

    return checked  # type: ignore[return-value]


get = _without_auto_init(ray.get)
wait = _without_auto_init(ray.wait)
cancel = _without_auto_init(ray.cancel)
put = _without_auto_init(ray.put)
kill = _without_auto_init(ray.kill)


# --- sessions --------------------------------------------------------------------
def _worker() -> Any:
    return ray._private.worker.global_worker


def in_client_mode() -> bool:
    """Whether this process talks to Ray through Ray Client (``ray://``)."""
    return bool(ray.util.client.ray.is_connected())


def session() -> object | None:
    """The Ray connection that registrations made now belong to, or None.

    Work queued against an old session is dropped: calling into a Ray that
    is gone would end the process.
    """
    if in_client_mode():
        context: object = ray.util.client.ray.get_context()
        return context
    if not ray.is_initialized():
        return None
    return getattr(_worker(), "core_worker", None)


GATE = Gate(session)

#: How long ``ray.shutdown`` waits for the package's threads to leave Ray.
SHUTDOWN_WAIT = 10.0


def _install_shutdown_gate() -> None:
    # A ``from ray import shutdown`` bound before this import skips the gate;
    # the atexit handler below covers the interpreter's exit whatever the
    # import order (docs/architecture.md).
    original = ray.shutdown
    if getattr(original, "_ray_anyio_gate", False):
        return

    @functools.wraps(original)
    def shutdown(*args: Any, **kwargs: Any) -> Any:
        GATE.close(SHUTDOWN_WAIT)
        _forget_core_worker()
        try:
            return original(*args, **kwargs)
        finally:
            GATE.reopen()

    shutdown._ray_anyio_gate = True  # type: ignore[attr-defined]
    ray.shutdown = shutdown
    # Ray registered its own atexit shutdown on import, so this runs first and
    # keeps the package's daemon threads out of Ray; the main thread goes on.
    atexit.register(GATE.close, SHUTDOWN_WAIT)  # closed for good
    atexit.register(lambda: _forget_core_worker())  # defined below


_install_shutdown_gate()


# --- readiness: ObjectRef._on_ready (Ray 2.60+) ----------------------------------
#: Ray's per-ref readiness hook (not through Ray Client); fallback: the poller.
HAS_ON_READY = callable(getattr(ray.ObjectRef, "_on_ready", None))


def on_ready(
    ref: Ref, callback: Callable[[BaseException | None], None]
) -> Callable[[], None]:
    """Register ``callback(exc)`` for when ``ref`` exists; return the withdrawal."""
    return ref._on_ready(callback)


# --- objects here: CoreWorker.object_exists, sizes -------------------------------
_CORE_WORKER = getattr(ray._raylet, "CoreWorker", None)
#: Whether the core worker tells if an object is here (else ``ray.wait``), and
#: how many bytes objects take and its memory store holds (else: large).
HAS_OBJECT_EXISTS = callable(getattr(_CORE_WORKER, "object_exists", None))
HAS_OBJECT_SIZES = all(
    callable(getattr(_CORE_WORKER, name, None))
    for name in ("get_local_object_locations", "get_local_memory_store_bytes_used")
)
#: Stands for "the size is not known": a fetch treats it as large.
UNKNOWN = float("inf")


class Objects:
    """What the core worker knows of the objects on this node, and their bytes.

    Small objects (up to Ray's ``max_direct_call_object_size``, 100 KiB by
    default) live in this process's memory store, which knows its total;
    larger ones in the node's object store, whose size their owner knows.
    """

    __slots__ = ("_cw", "in_memory")

    def __init__(self, core_worker: Any) -> None:
        self._cw = core_worker
        #: Whether an object is in this process's memory store (so it is small).
        self.in_memory: Callable[[Ref], bool] = functools.partial(
            core_worker.object_exists, memory_store_only=True
        )

    def here(self, ref: Ref) -> bool:
        """Whether the object is on this node (in a store of this process's)."""
        return bool(self._cw.object_exists(ref))

    def exceeds(self, refs: Sequence[Ref], limit: float) -> bool:
        """Whether the refs that are on this node now take over ``limit`` bytes.

        Refs not here yet count for nothing (a fetch does not take them now);
        an object whose size was not reported counts as over any limit.
        """
        if not HAS_OBJECT_SIZES:
            return True
        # One C-level pass in the common case, every object in the memory
        # store (object_exists(ref, memory_store_only), positionally: a partial
        # with a keyword costs half as much again, per ref).
        if all(map(self._cw.object_exists, refs, repeat(True))):
            stored: list[Ref] = []
        else:
            stored = [ref for ref in refs if not self.in_memory(ref)]
        total = sum(self.sizes(stored)) if stored else 0
        if total > limit or len(stored) == len(refs):
            return total > limit
        # The memory store's total bounds any set of its objects: one call,
        # where asking each object's size costs a dict per ref.
        if total + self._cw.get_local_memory_store_bytes_used() <= limit:
            return False
        rest = [ref for ref in refs if self.in_memory(ref)]
        return total + sum(self.sizes(rest)) > limit

    def sizes(self, refs: Sequence[Ref]) -> list[float]:
        """Each ref's bytes: 0 if it is not on this node, UNKNOWN if not told."""
        locate = self._cw.get_local_object_locations
        known = locate(list(refs)) if HAS_OBJECT_SIZES else {}
        sizes = [(known.get(ref) or {}).get("object_size") for ref in refs]
        return [
            (UNKNOWN if self.here(r) else 0) if n is None else n
            for r, n in zip(refs, sizes, strict=True)
        ]


#: ``(core worker, Objects)``: every single-ref ``get`` asks for it.
_objects_cache: tuple[object, Objects] | None = None


def _forget_core_worker() -> None:  # keep no core worker alive past shutdown
    global _objects_cache
    _objects_cache = None


def objects() -> Objects | None:
    """The core worker's view of this node's objects, or None: use ray.wait.

    None through Ray Client (values come over the network) or without
    ``object_exists``.
    """
    global _objects_cache
    if not HAS_OBJECT_EXISTS:
        return None
    core_worker = getattr(_worker(), "core_worker", None)
    cached = _objects_cache
    if cached is not None and cached[0] is core_worker:
        return cached[1]
    if in_client_mode():
        return None
    if core_worker is None:
        raise not_running()
    made = Objects(core_worker)
    _objects_cache = (core_worker, made)
    return made


# --- tasks and streaming generators ---------------------------------------------
def python_function(fn: object) -> Callable[..., Any] | None:
    """A remote function's Python function (``_function``), else None."""
    if not isinstance(fn, ray.remote_function.RemoteFunction):
        return None
    body = getattr(fn, "_function", None)
    return body if callable(body) else None


def generator_completed(gen: Any) -> Ref:
    return gen.completed()  # type: ignore[no-any-return]


#: Ray 2.58 replaced ``_get_next_ref`` by ``_get_next_ref_n`` and added
#: ``_stream_exhausted``; before, the core worker tells if a stream has ended.
HAS_NEXT_REF_N = hasattr(ray.ObjectRefGenerator, "_get_next_ref_n")


def _stream_ended(gen: Any) -> bool:
    if HAS_NEXT_REF_N:
        return bool(gen._stream_exhausted())
    return bool(_worker().core_worker.is_object_ref_stream_finished(gen._generator_ref))


def stream_next_now(gen: Any) -> Ref | None:
    """The next item's ref if Ray has it now, else None; StopIteration at the end."""
    if (
        _stream_ended(gen)
        and wait([generator_completed(gen)], timeout=0, fetch_local=False)[1]
    ):
        # At the end, _next_sync gets the task's result (to report its failure)
        # and before Ray 2.58 waits for it: call it once the task has returned.
        return None
    ref: Ref = gen._next_sync(timeout_s=0)
    return None if ref.is_nil() else ref


def stream_wait_ref(gen: Any) -> Ref:
    """A ref that becomes ready when the stream's next item (or its end) arrives."""
    if _stream_ended(gen):
        return generator_completed(gen)
    return gen._get_next_ref_n(1)[0] if HAS_NEXT_REF_N else gen._get_next_ref()  # type: ignore[no-any-return]


# --- actor handles ---------------------------------------------------------------
try:  # Ray Client's actor handle is not an ActorHandle
    from ray.util.client.common import ClientActorHandle as _ClientActorHandle

    _ACTOR_HANDLES: tuple[type, ...] = (ray.actor.ActorHandle, _ClientActorHandle)
except ImportError:  # pragma: no cover - a Ray without the client
    _ACTOR_HANDLES = (ray.actor.ActorHandle,)


def is_actor_handle(obj: object) -> bool:
    """Whether ``obj`` is an actor handle, of a driver or of Ray Client."""
    return isinstance(obj, _ACTOR_HANDLES)
