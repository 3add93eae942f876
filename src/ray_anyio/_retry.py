"""``Retry``: when a failed item of ``map`` or ``ActorPool`` starts again, and when."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from numbers import Real
from typing import Any

from ._core._checks import check_count

#: What ``on``/``not_on`` accept, as the messages say.
_TYPES = "an exception class or a tuple of exception classes"


@dataclass(frozen=True)
class Retry:
    """A retry policy: how often an item's task may run, and how long between.

    An item whose task raised an exception that is an instance of one of
    ``on`` and of none of ``not_on`` is started again after
    ``min(delay * backoff ** (n - 1), max_delay)`` seconds (``n``: the failures
    so far), varied at random by up to ``jitter`` of itself either way, until
    it has run ``attempts`` times in all; then its last error is its outcome.

    ``map(..., retry=Retry(...))``, ``ActorPool.map(..., retry=...)`` and
    ``ActorPool.submit(..., retry=...)`` take it. A retry waiting for its delay
    holds no ``max_in_flight`` place; its start counts for ``max_per_second``;
    ``ordered=True`` keeps input order; a task cancelled because its block is
    left (or cancelled) is never retried. An ``item_timeout`` is a
    ``TimeoutError``: retried when ``on`` covers it (the default does). Ray's
    own ``max_retries``/``retry_exceptions`` retry inside one attempt, at once.

    Example::

        policy = ray_anyio.Retry(5, on=ConnectionError, delay=0.5, max_delay=10)
        async with ray_anyio.map(fetch_page, urls, retry=policy) as pages:
            ...

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: ``attempts`` below 1; a negative, infinite or NaN
            ``delay`` or ``max_delay``; ``backoff`` below 1 or not finite;
            ``jitter`` outside [0, 1].
    """

    attempts: int = 3
    _: KW_ONLY
    on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,)
    not_on: type[BaseException] | tuple[type[BaseException], ...] = ()
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        # Frozen: the checked values are set through object.__setattr__.
        fix = object.__setattr__
        fix(self, "attempts", check_count(self.attempts, "Retry(attempts)"))
        fix(self, "on", _types(self.on, "on"))
        fix(self, "not_on", _types(self.not_on, "not_on"))
        fix(self, "delay", _seconds(self.delay, "delay"))
        fix(self, "max_delay", _seconds(self.max_delay, "max_delay"))
        backoff = _real(self.backoff, "backoff")
        if not math.isfinite(backoff) or backoff < 1:
            raise ValueError(
                f"Retry(backoff) must be a finite number >= 1 (1: a constant delay),"
                f" got {self.backoff!r}"
            )
        fix(self, "backoff", backoff)
        jitter = _real(self.jitter, "jitter")
        if not 0 <= jitter <= 1:
            raise ValueError(
                f"Retry(jitter) must be between 0 and 1 (a fraction of the delay),"
                f" got {self.jitter!r}"
            )
        fix(self, "jitter", jitter)

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` is one this policy starts an item again for."""
        return isinstance(error, self.on) and not isinstance(error, self.not_on)

    def delay_after(
        self, failures: int, uniform: Callable[[], float] = random.random
    ) -> float:
        """Seconds to wait before the attempt after ``failures`` failures.

        ``uniform`` returns a number in [0, 1) (tests pass their own).
        """
        base = min(self.delay * self.backoff ** (failures - 1), self.max_delay)
        return base * (1 + self.jitter * (2 * uniform() - 1))


def check_retry(retry: object) -> Retry | None:
    """Return ``retry`` if it is None or a :class:`Retry`, else raise TypeError."""
    if retry is None or isinstance(retry, Retry):
        return retry
    raise TypeError(
        f"retry must be a ray_anyio.Retry(...) or None, got {type(retry).__name__}"
        " (e.g. retry=ray_anyio.Retry(3, delay=0.5))"
    )


def _types(value: Any, name: str) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"Retry({name}) must be {_TYPES}, got {value!r}")
    return items


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"Retry({name}) must be a number, got {type(value).__name__}")
    return float(value)


def _seconds(value: Any, name: str) -> float:
    seconds = _real(value, name)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"Retry({name}) must be a finite number of seconds >= 0, got {value!r}"
        )
    return seconds
