"""Argument checks: what numbers.Real and numbers.Integral accept, bools refused."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from ray_anyio._core._checks import check_count, check_rate, check_timeout


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
