"""The code on the docs pages runs, on asyncio and on trio, and passes ruff.

Sybil (https://sybil.readthedocs.io) parses the MyST pages ``docs/*.md``:

* Every ``python`` block of a page runs, in page order, in one namespace: a
  module of its own, registered in ``sys.modules`` under a private name and
  shipped to Ray's workers by value (they cannot import a page). A block uses
  what the blocks before it defined, and a ``from __future__`` import holds
  for the blocks after it, as in a module.
* A block that defines ``main`` has it run right after the block: ``async def
  main()`` through ``anyio.run``, a synchronous ``def main(backend)`` called
  with the backend's name. Each page runs once per backend, in a fresh module,
  against the session's Ray (``tests/conftest.py``).
* ``<!-- backends: trio -->``: the ``main`` functions after it run on those
  backends only (by default on asyncio and trio).
* ``<!-- same-as: PATH [NAME] -->`` just before a block: the block shows the
  file at PATH, or its function or class NAME. It is not run: the file is
  what runs, and ``tests/test_docs_examples.py`` compares the two.
* ``<!-- skip: next -->`` (Sybil's own): the next block is a fragment, not run.

HTML comments show neither on GitHub nor in Sphinx's pages. The blocks that
run, put together, pass ``ruff check`` and ``ruff format``. Sybil's pytest
plugin collects the files that pytest walks, and the pages are not under
``tests/``: this module drives Sybil itself, one test per page and backend.
"""

from __future__ import annotations
import __future__

import ast
import inspect
import json
import re
import subprocess
import sys
import unittest
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import pytest
import ray.cloudpickle
from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer
from sybil.parsers.myst import CodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
ALL_BACKENDS = ("asyncio", "trio")
#: A block whose language says Python, however Sybil would take it.
PYTHON_FENCE = re.compile(
    r"^ *(`{3,}|~{3,}) *(\{[\w-]+\} *)?(python3?|py|pycon)\b", re.M
)


class PageDocument(Document):
    """A page whose namespace is a module's, where pickle and Ray find its code."""

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text, path)
        self.module = ModuleType("_docs_page_" + re.sub(r"\W", "_", Path(path).stem))
        self.namespace = self.module.__dict__


class PageRun:
    """One run of a page's code on one backend, or a dry run (``backend=None``).

    A dry run executes nothing: it notes the blocks that would run and the
    backends on which a ``main`` would.
    """

    def __init__(self, page: Path, backend: str | None) -> None:
        self.backend = backend
        self.backends = ALL_BACKENDS  # where the next ``main`` runs
        self.future_flags = 0
        self.blocks_run: list[Example] = []
        self.main_backends: set[str] = set()
        sybil = Sybil(
            parsers=[
                CodeBlockParser("python", self.run_block),
                SkipParser(),
                self.parse_backends,
                self.parse_same_as,
            ],
            document_types={".md": PageDocument},
        )
        document = sybil.parse(page)
        assert isinstance(document, PageDocument)
        self.document = document

    def parse_backends(self, document: Document) -> Iterator[Region]:
        for region in DirectiveInHTMLCommentLexer("backends")(document):
            names = tuple(region.lexemes["arguments"].split())
            if not names or not set(names) <= set(ALL_BACKENDS):
                raise ValueError(f"{document.path}: unknown backends {names}")
            region.parsed = names
            region.evaluator = self.set_backends
            yield region

    def set_backends(self, example: Example) -> None:
        self.backends = example.parsed

    def parse_same_as(self, document: Document) -> Iterator[Region]:
        for region in DirectiveInHTMLCommentLexer("same-as")(document):
            region.evaluator = self.skip_next
            yield region

    def skip_next(self, example: Example) -> None:
        # As Sybil's skip does: evaluating the comment puts this evaluator in
        # front of the next example's own, which then does not run.
        if example.region.evaluator == self.skip_next:
            example.document.push_evaluator(self.skip_next)
        else:
            example.document.pop_evaluator(self.skip_next)

    def run_block(self, example: Example) -> None:
        self.blocks_run.append(example)
        source = str(example.parsed)
        tree = ast.parse(source, example.path)
        has_main = any(
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name == "main"
            for node in tree.body
        )
        if has_main:
            self.main_backends.update(self.backends)
        if self.backend is None:
            return
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                for alias in node.names:
                    self.future_flags |= getattr(__future__, alias.name).compiler_flag
        # Blank lines first, so that tracebacks give the page's line numbers.
        padded = "\n" * (example.line + example.parsed.line_offset) + source
        code = compile(
            padded, example.path, "exec", flags=self.future_flags, dont_inherit=True
        )
        exec(code, example.namespace)
        if has_main and self.backend in self.backends:
            main = example.namespace["main"]
            if inspect.iscoroutinefunction(main):
                anyio.run(main, backend=self.backend)
            else:
                main(self.backend)

    def evaluate(self) -> None:
        """Evaluate the page's examples in order, in the page's module."""
        module = self.document.module
        sys.modules[module.__name__] = module
        # Ray's workers cannot import a page: ship its functions by value.
        ray.cloudpickle.register_pickle_by_value(module)
        try:
            for example in self.document:
                try:
                    example.evaluate()
                except unittest.SkipTest:
                    continue  # Sybil's "skip: next" with a reason
        finally:
            ray.cloudpickle.unregister_pickle_by_value(module)
            del sys.modules[module.__name__]


def _dry_run(page: Path) -> PageRun:
    run = PageRun(page, backend=None)
    run.evaluate()
    return run


DRY_RUNS = {page: _dry_run(page) for page in PAGES}


@pytest.mark.parametrize(
    ("page", "backend"),
    [
        pytest.param(page, backend, id=f"{page.stem}-{backend}")
        for page, run in DRY_RUNS.items()
        for backend in ALL_BACKENDS
        if backend in run.main_backends
    ],
)
def test_page_code_runs(page: Path, backend: str) -> None:
    PageRun(page, backend).evaluate()


def test_every_python_block_is_collected() -> None:
    for page, run in DRY_RUNS.items():
        fences = PYTHON_FENCE.findall(page.read_text())
        code_blocks = [
            example
            for example in run.document
            if example.region.evaluator == run.run_block
        ]
        assert len(code_blocks) == len(fences), f"{page.name}: a block Sybil misses"
        if run.blocks_run:
            assert run.main_backends, f"{page.name}: no main runs its code"


def test_pages_show_code_inline() -> None:
    # GitHub shows nothing of an included file: code lives on its page.
    for page in PAGES:
        assert "{literalinclude}" not in page.read_text(), page.name


def _module_source(run: PageRun) -> tuple[str, list[int]]:
    """The blocks that run, put together, and the page's line of each line."""
    lines: list[str] = []
    page_lines: list[int] = []
    for example in run.blocks_run:
        if lines:  # two blank lines between blocks, as between definitions
            lines += ["", ""]
            page_lines += [example.line, example.line]
        block = str(example.parsed).splitlines()
        lines += block
        page_lines += range(example.line + 1, example.line + 1 + len(block))
    return "\n".join(lines) + "\n", page_lines


def _ruff(*args: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_page_code_passes_ruff() -> None:
    # With the project's settings. F811 is off: a page may define a main in
    # each section, each redefining the one before.
    problems = []
    for page, run in DRY_RUNS.items():
        if not run.blocks_run:
            continue
        source, page_lines = _module_source(run)
        where = str(page.relative_to(ROOT))
        name = ("--stdin-filename", str(page.with_suffix(".py")))
        check = _ruff(
            "check", "--output-format=json", "--ignore=F811", *name, source=source
        )
        assert check.stdout, check.stderr
        problems += [
            f"{where}:{page_lines[found['location']['row'] - 1]}: "
            f"{found['code']} {found['message']}"
            for found in json.loads(check.stdout)
        ]
        formatted = _ruff("format", "--diff", *name, source=source)
        if formatted.returncode != 0:
            problems.append(f"{where}: not as ruff formats it\n{formatted.stdout}")
    assert not problems, "\n".join(problems)
