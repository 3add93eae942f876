"""A chunk: its payload, its results per input, the sizes of ``"auto"``."""

from __future__ import annotations

from ray_anyio._chunks import (
    MAX_AUTO_SIZE,
    UNKNOWN_LENGTH_SIZE,
    _chunk_body,
    auto_size,
    item_values,
    payload,
)
from ray_anyio._core._outcome import Outcome


def test_payload_sends_one_argument_bare_and_several_as_a_list() -> None:
    assert payload([(1,), (2,)]) == ([1, 2], False)
    assert payload([(1, "a"), (2, "b")]) == ([[1, "a"], [2, "b"]], True)
    assert payload([((1, 2),)]) == ([(1, 2)], False)  # a tuple stays one argument


def test_a_chunk_body_keeps_each_error_at_its_index() -> None:
    def half(x: int) -> int:
        if x % 2:
            raise ValueError(f"odd {x}")
        return x // 2

    values, errors = _chunk_body(half, [0, 1, 2, 3], False)
    assert values == [0, None, 1, None]
    assert {i: str(e) for i, e in errors.items()} == {1: "odd 1", 3: "odd 3"}


def test_item_values_put_a_failed_input_s_error_in_its_place() -> None:
    error = ValueError("odd")
    got = item_values(Outcome(([0, None, 2], {1: error})), 3)
    assert got[0] == 0 and got[2] == 2
    assert type(got[1]) is Outcome and got[1].error is error


def test_item_values_of_a_failed_task_fail_every_input() -> None:
    error = RuntimeError("the worker died")
    got = item_values(Outcome(error=error), 3)
    assert [item.error for item in got] == [error] * 3


def test_auto_size() -> None:
    assert auto_size(None, 2) == UNKNOWN_LENGTH_SIZE
    assert auto_size(100_000, 2) == MAX_AUTO_SIZE
    assert auto_size(800, 2) == 100  # four chunks per slot
    assert auto_size(3, 2) == 1
    assert auto_size(10, 0) == 3  # no CPU reported: one slot
