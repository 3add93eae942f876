"""The one key -> values structure: insertion order, repeats, removal by identity."""

from __future__ import annotations

from ray_anyio._core._multimap import MultiMap


def test_values_by_key_in_the_order_added() -> None:
    m: MultiMap[str, int] = MultiMap()
    assert m.add("a", 1) is True
    assert m.add("b", 2) is True
    assert m.add("a", 3) is False  # a repeat of a key
    assert m.keys() == ["a", "b"] and len(m) == 2
    assert list(m.values()) == [1, 3, 2]
    assert m.pop("a") == [1, 3]
    assert m.pop("a") == [] and "a" not in m


def test_remove_takes_one_value_by_identity() -> None:
    first, second = object(), object()
    m: MultiMap[str, object] = MultiMap()
    m.add("k", first)
    m.add("k", second)
    assert m.remove("k", first) is False  # "k" still has a value
    assert m.pop("k") == [second]
    m.add("k", first)
    assert m.remove("k", object()) is False  # not there: nothing removed
    assert m.remove("k", first) is True and len(m) == 0


def test_fill_puts_each_value_at_every_position() -> None:
    m: MultiMap[str, int] = MultiMap()
    m.add("x", 0)
    m.add("y", 1)
    m.add("x", 2)
    values = [None, None, None]
    m.fill(values, ["x", "y"], ["X", "Y"])
    assert values == ["X", "Y", "X"] and len(m) == 0
