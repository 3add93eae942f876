"""Argument checks: what numbers.Real and numbers.Integral accept, bools refused;
the item check and its hints, for one of ``items`` and for one item."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import ray

from ray_anyio._core._checks import (
    check_count,
    check_item,
    check_items,
    check_rate,
    check_timeout,
)


@pytest.mark.parametrize("value", [np.int64(5), np.float64(5.0), Fraction(5), 5, 5.0])
def test_numbers_of_any_numeric_type_are_accepted(value: Any) -> None:
    assert check_rate(value, "max_per_second") == 5.0
    assert check_timeout(value) == 5.0


@pytest.mark.parametrize("value", [np.int64(3), np.int32(3), 3])
def test_whole_numbers_of_any_integral_type_are_counts(value: Any) -> None:
    result = check_count(value, "max_in_flight")
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("check", [check_rate, check_timeout, check_count])
def test_a_bool_is_never_a_number(check: Any) -> None:
    with pytest.raises(TypeError, match="the_argument"):
        check(True, "the_argument")


def test_a_count_below_its_least_names_the_argument() -> None:
    with pytest.raises(ValueError, match="retries must be at least 0, got -1"):
        check_count(-1, "retries", least=0)
    with pytest.raises(TypeError, match="max_in_flight must be an int, got float"):
        check_count(2.0, "max_in_flight")  # type: ignore[arg-type]


def _gen() -> Iterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("item", "hint"),
    [
        (3, "$"),
        ([1], "$"),
        ({1}, r"; a set has no order .* wait\(list\(\.\.\.\)\)$"),
        (_gen(), r"; pass a list: wait\(list\(\.\.\.\)\)$"),
    ],
)
def test_an_item_of_items_gets_the_hint_of_its_function(item: Any, hint: str) -> None:
    with pytest.raises(TypeError, match=r"items\[1\] must be an ObjectRef or an "):
        check_items([ray.put(0), item], "wait")
    with pytest.raises(TypeError, match=f"^items\\[2\\] must be .*, got \\w+{hint}"):
        check_item(item, "items[2]", "wait")


@pytest.mark.parametrize(
    ("item", "hint"),
    [
        (3, "$"),
        ([1], "; add\\(\\) takes one item: call it once per item$"),
        ({1}, "; add\\(\\) takes one item"),
        (_gen(), "; add\\(\\) takes one item"),
        (iter([1]), "$"),  # any iterator (a file is one) is no slip here
    ],
)
def test_one_item_gets_the_hint_of_one(item: Any, hint: str) -> None:
    with pytest.raises(TypeError, match=f"^item must be .*, got \\w+{hint}"):
        check_item(item, "item", "add", one=True)


def test_refs_and_awaitables_are_items() -> None:
    async def work() -> None:
        pass

    coro = work()
    item: object
    for item in (ray.put(1), coro, concurrent.futures.Future()):
        check_item(item, "item", "add", one=True)
        check_item(item, "items[0]", "wait")
    coro.close()
