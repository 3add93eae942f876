"""The README's code and the files the docs pages show run, and do what they say.

The code blocks of the docs pages run in ``tests/test_docs_pages.py``. Here:

* Files that a page shows (a block after ``<!-- same-as: PATH [NAME] -->``):
  each such block is the file at PATH, relative to the page, or the file's
  top-level function or class NAME with its decorators, character for
  character; every file of ``docs/examples/`` is shown whole by some page.
  The files are what runs: the web services of ``examples/`` in
  ``tests/examples/``, and the testing page's folder below.
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
import inspect
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ray_anyio

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
TESTING_EXAMPLE = DOCS / "examples" / "testing"
README = ROOT / "README.md"
#: Seconds a README script may take, Ray's start and shutdown included.
README_TIMEOUT = 240
SAME_AS_COMMENT = re.compile(r"^[ \t]*<!--+\s*same-as\b", re.M)
SAME_AS_BLOCK = re.compile(
    r"^<!-- same-as: (?P<path>\S+)(?: (?P<name>\w+))? -->\n"
    r"(?P<fence>`{3,})(?P<language>\w+)\n(?P<code>.*?)^(?P=fence)$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Copy:
    page: Path
    path: Path
    name: str | None
    code: str


def _copies() -> Iterator[Copy]:
    for page in PAGES:
        for match in SAME_AS_BLOCK.finditer(page.read_text()):
            path = (page.parent / match["path"]).resolve()
            yield Copy(page, path, match["name"], match["code"])


def _shown_part(copy: Copy) -> str:
    """The file, or its top-level function or class ``copy.name``."""
    text = copy.path.read_text()
    if copy.name is None:
        return text
    lines = text.splitlines(keepends=True)
    for node in ast.parse(text).body:
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.name == copy.name
        ):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return "".join(lines[first - 1 : node.end_lineno])
    raise AssertionError(f"{copy.path} defines no {copy.name}")


@pytest.mark.parametrize(
    "copy",
    [
        pytest.param(
            copy, id="-".join(filter(None, [copy.page.stem, copy.path.name, copy.name]))
        )
        for copy in _copies()
    ],
)
def test_copied_block_is_the_file(copy: Copy) -> None:
    assert copy.code == _shown_part(copy)


def test_every_same_as_comment_comes_before_a_block() -> None:
    for page in PAGES:
        text = page.read_text()
        comments = len(SAME_AS_COMMENT.findall(text))
        assert len(SAME_AS_BLOCK.findall(text)) == comments, page.name


def test_every_file_of_docs_examples_is_on_a_page() -> None:
    shown = {copy.path for copy in _copies() if copy.name is None}
    for path in sorted((DOCS / "examples").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path in shown, f"{path.relative_to(ROOT)} is on no page"


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
    # are compiled, not run; the runnable versions are on the docs pages.
    compile(
        code, f"<{qualname} docstring>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
