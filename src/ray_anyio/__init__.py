"""Trio/AnyIO-native structured concurrency for Ray."""

from ._as_completed import AsCompleted, as_completed
from ._channel import ChannelReceiver, ChannelSender, open_channel
from ._checkpoint import CheckpointBusyError
from ._core._block import Block, SwallowingBlock
from ._core._results import Results
from ._get import get
from ._map import map
from ._map_results import MapResults
from ._pool import ActorPool
from ._put import put
from ._retry import Retry
from ._run import run_until_complete
from ._scope import RemoteCallable, TaskScope, open_scope
from ._stream import Stream, stream
from ._wait import wait

__all__ = [
    "ActorPool",
    "AsCompleted",
    "Block",
    "ChannelReceiver",
    "ChannelSender",
    "CheckpointBusyError",
    "MapResults",
    "RemoteCallable",
    "Results",
    "Retry",
    "Stream",
    "SwallowingBlock",
    "TaskScope",
    "as_completed",
    "get",
    "map",
    "open_channel",
    "open_scope",
    "put",
    "run_until_complete",
    "stream",
    "wait",
]
__version__ = "0.1.0"

# Public objects say where users import them from, in reprs and tracebacks
# (as AnyIO's __init__ and trio's fixup_module_metadata do).
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("ray_anyio."):
        _obj.__module__ = __name__
del _name, _obj
