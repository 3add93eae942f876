"""Every code example of the docs and of the README runs, and does what it says.

* ``docs/examples/*.py``: the pages include these files (``literalinclude``).
  Each defines ``main``: ``async def main()`` runs on every backend in the
  module's ``BACKENDS`` (default: asyncio and trio) against the session's Ray;
  a synchronous ``def main(backend)`` is called once per backend.
* ``docs/examples/testing/``: the example test file of the testing page, with
  its ``pyproject.toml``, run by pytest in a fresh process (it starts its own
  Ray through the plugin's ``ray_session``).
* README.md: each fenced ``python`` block is a complete script that starts its
  own Ray (``ray.init(address="local")``); it runs in a fresh interpreter, with
  ``RAY_ADDRESS=local`` as well, as on a reader's machine.
* Docstrings of the public API: each ``Example::`` block is valid Python, and
  each public name has its entry on the API page.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import pytest
import ray.cloudpickle

import ray_anyio

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
TESTING_EXAMPLE = ROOT / "docs" / "examples" / "testing"
README = ROOT / "README.md"
ALL_BACKENDS = ("asyncio", "trio")
#: Seconds a README script may take, Ray's start and shutdown included.
README_TIMEOUT = 240


def _backends_of(path: Path) -> tuple[str, ...]:
    """The module-level ``BACKENDS = (...)`` of an example, read without importing."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [
            getattr(target, "id", None) for target in node.targets
        ] == ["BACKENDS"]:
            backends = ast.literal_eval(node.value)
            assert set(backends) <= set(ALL_BACKENDS), path
            return tuple(backends)
    return ALL_BACKENDS


def _load(path: Path) -> ModuleType:
    name = f"_docs_example_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Ray's workers cannot import docs/examples: ship its functions by value.
    ray.cloudpickle.register_pickle_by_value(module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def loaded() -> Iterator[list[ModuleType]]:
    modules: list[ModuleType] = []
    yield modules
    for module in modules:
        ray.cloudpickle.unregister_pickle_by_value(module)
        sys.modules.pop(module.__name__, None)


@pytest.mark.parametrize(
    ("path", "backend"),
    [
        pytest.param(path, backend, id=f"{path.stem}-{backend}")
        for path in EXAMPLES
        for backend in _backends_of(path)
    ],
)
def test_docs_example(path: Path, backend: str, loaded: list[ModuleType]) -> None:
    module = _load(path)
    loaded.append(module)
    main = module.main
    if inspect.iscoroutinefunction(main):
        anyio.run(main, backend=backend)
    else:
        main(backend)


def test_examples_exist_and_are_included() -> None:
    pages = "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    assert EXAMPLES
    for path in EXAMPLES:
        assert f"examples/{path.name}" in pages, f"{path.name} is on no page"
    for path in sorted(TESTING_EXAMPLE.iterdir()):
        if path.is_file():
            name = f"examples/testing/{path.name}"
            assert name in pages, f"{name} is on no page"


def test_testing_page_example(pytester: pytest.Pytester) -> None:
    # The page's test file, as a user's project would hold it: the plugin
    # (entry point) gives ray_session, AnyIO's plugin runs both backends.
    for path in TESTING_EXAMPLE.iterdir():
        if path.is_file():
            (pytester.path / path.name).write_text(path.read_text())
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=6)


def test_api_page_lists_every_public_name() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    for name in ray_anyio.__all__:
        assert re.search(rf"^\.\. auto\w+:: {name}$", api, re.M), name


def _readme_blocks() -> list[str]:
    text = README.read_text()
    return re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(code, id=f"readme-block-{number}")
        for number, code in enumerate(_readme_blocks(), start=1)
    ],
)
def test_readme_block(code: str, tmp_path: Path) -> None:
    script = tmp_path / "readme_block.py"
    script.write_text(code)
    # "local": the script starts a Ray of its own, as on a reader's machine,
    # instead of joining the session's cluster or another one on this machine.
    env = {**os.environ, "RAY_ADDRESS": "local"}
    try:
        proc = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=README_TIMEOUT,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"README block did not finish in {README_TIMEOUT} s: {exc}")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]


def _docstring_examples() -> Iterator[tuple[str, str]]:
    for name in ray_anyio.__all__:
        obj = getattr(ray_anyio, name)
        docs = [(name, inspect.getdoc(obj) or "")]
        if inspect.isclass(obj):
            docs += [
                (f"{name}.{attr}", inspect.getdoc(member) or "")
                for attr, member in vars(obj).items()
                if not attr.startswith("_") and callable(member)
            ]
        for qualname, doc in docs:
            for match in re.finditer(r"::\n\n((?:(?:    .*)?\n)+)", doc + "\n"):
                yield qualname, textwrap.dedent(match[1])


@pytest.mark.parametrize(
    ("qualname", "code"),
    [pytest.param(q, c, id=q) for q, c in _docstring_examples()],
)
def test_docstring_example_is_valid_python(qualname: str, code: str) -> None:
    # Literal blocks are fragments (``await`` at top level, free names): they
    # are compiled, not run; the runnable versions live in docs/examples.
    compile(
        code, f"<{qualname} docstring>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
