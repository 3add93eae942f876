"""Trio/AnyIO-native structured concurrency for Ray."""

from ._get import get
from ._run import run_until_complete
from ._wait import wait

__all__ = ["get", "run_until_complete", "wait"]
__version__ = "0.1.0"
