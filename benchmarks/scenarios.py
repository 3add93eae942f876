"""The scenarios by id, in the order they run and are reported."""

from __future__ import annotations

from collections.abc import Callable

from .scenarios_batches import b4d_drain_batches
from .scenarios_big import b9_big_values
from .scenarios_cancel import b6_memory, b7_cancel
from .scenarios_channel import q1_channel_throughput, q2_pipeline_memory
from .scenarios_fanin import b8_fan_in
from .scenarios_fanout import c1_tiny_items, c2_retries, c3_checkpoint
from .scenarios_get import b1_get_finished, b2_get_running, b5_stall
from .scenarios_pool import p1_pool_throughput, p2_pool_slow_member
from .scenarios_rate import r1_rate
from .scenarios_sequential import b3_sequential
from .scenarios_serve import s1_serve_requests
from .scenarios_wait import b4_drain
from .timing import Context, Row

SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "B1": b1_get_finished,
    "B2": b2_get_running,
    "B3": b3_sequential,
    "B4": b4_drain,
    "B4D": b4d_drain_batches,
    "B5": b5_stall,
    "B6": b6_memory,
    "B7": b7_cancel,
    "B8": b8_fan_in,
    "B9": b9_big_values,
    "P1": p1_pool_throughput,
    "P2": p2_pool_slow_member,
    "R1": r1_rate,
    "C1": c1_tiny_items,
    "C2": c2_retries,
    "C3": c3_checkpoint,
    "S1": s1_serve_requests,
    "Q1": q1_channel_throughput,
    "Q2": q2_pipeline_memory,
}
