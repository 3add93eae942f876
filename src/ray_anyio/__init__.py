"""Trio/AnyIO-native structured concurrency for Ray."""

from ._as_completed import AsCompleted, as_completed
from ._get import get
from ._map import map
from ._map_results import MapResults
from ._pool import ActorPool
from ._put import put
from ._run import run_until_complete
from ._scope import TaskScope, open_scope
from ._stream import Stream, stream
from ._wait import wait

__all__ = [
    "ActorPool",
    "AsCompleted",
    "MapResults",
    "Stream",
    "TaskScope",
    "as_completed",
    "get",
    "map",
    "open_scope",
    "put",
    "run_until_complete",
    "stream",
    "wait",
]
__version__ = "0.1.0"
