"""The package's face: every public name importable from ``ray_anyio``, and said so."""

from __future__ import annotations

import pytest

import ray_anyio


@pytest.mark.parametrize("name", ray_anyio.__all__)
def test_public_objects_say_where_users_import_them_from(name: str) -> None:
    obj = getattr(ray_anyio, name)
    assert obj.__module__ == "ray_anyio", f"{name} says {obj.__module__}"


def test_the_types_in_public_signatures_are_public() -> None:
    for name in ["Block", "SwallowingBlock", "Results", "RemoteCallable"]:
        assert name in ray_anyio.__all__
    assert issubclass(ray_anyio.MapResults, ray_anyio.Results)
    assert issubclass(ray_anyio.AsCompleted, ray_anyio.Results)
    assert repr(ray_anyio.MapResults) == "<class 'ray_anyio.MapResults'>"
