"""Nox sessions for ray-anyio: tests, oldest supported versions, lint, types, docs.

Sessions (``nox -l`` lists them):

``tests-3.10`` … ``tests-3.13``
    The whole suite (every async test runs on asyncio and on trio) on each
    CPython 3.10 to 3.13 found on the machine. An interpreter that is not found is
    skipped with a message, never an error, even under ``CI=true``.
``tests_min``
    The suite with the oldest ``ray``, ``anyio`` and ``trio`` that
    ``pyproject.toml`` claims (read from it, pinned with ``==``), on the oldest
    Python found.
``tests_ray(2.48)``, ``tests_ray(2.54)``, ``tests_ray(newest)``
    The suite on Ray 2.48, 2.54 and the newest release, on Python 3.11.
``tests_uvloop``
    The suite with its asyncio half on uvloop.
``lint``
    ``ruff check`` and ``ruff format --check``.
``typecheck``
    ``mypy --strict`` (configured in ``pyproject.toml``) on ``src/`` and
    ``tests/``, including ``tests/typing/check_types.py``, whose
    ``assert_type`` lines pin the return types of the public API.
``docs``
    Sphinx with warnings as errors, then the code of every page run on both
    backends, through Sybil (``tests/test_docs_pages.py``), and every other
    example of the docs and of the README (``tests/test_docs_examples.py``).
``bench``
    ``python benchmarks/run.py --quick`` (arguments after ``--`` are passed on).
``tests_multihost``
    The multi-host tests (``tests/multihost/``): three hosts made of network
    namespaces on a private bridge, Ray started on each, the tests run from
    the head's namespace, a host partitioned mid-call. Needs root and ``ip``;
    skipped with a message where either is missing.

Finding interpreters. Nox's own discovery cannot see pyenv versions that are
installed but not activated (their shims answer "command not found"), and with
uv it would try to download a missing Python. So this file looks for each
``pythonX.Y`` itself, at run time: on ``PATH`` (each candidate is run to check
that it works), in pyenv's ``versions/`` folder, and among uv-managed
interpreters. It links what it finds into ``.nox/_pythons/`` and puts that
folder first on ``PATH``, where nox finds them by their usual names; downloads
of interpreters are switched off.

Reusing wheels. Ray's wheels are large (about 70 MB, 250 MB installed) and
there is one per CPython minor version (cp310 … cp313), so the first run on a
machine has to fetch one per interpreter; no later run should fetch any. The
sessions use uv as nox's virtualenv backend when it is installed (``pip
install 'nox[uv]'`` or ``pip install uv`` beside nox): uv keeps every wheel it
downloads, unpacked, in one persistent cache (``~/.cache/uv``, or
``$UV_CACHE_DIR``) and links the files into each new environment instead of
downloading or copying them, so a fresh environment for any session costs
seconds and no network once the cache is warm. Without uv, nox falls back to
virtualenv and pip, whose own HTTP and wheel cache (``~/.cache/pip``) also
saves the downloads, at the cost of unpacking each wheel again. We chose the
cache over a ``--find-links`` wheelhouse because the cache needs no build step,
no separate invalidation and works unchanged for ``tests_min``'s older pins.
Every session still builds a fresh environment, so a test never passes only
because of a stale one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nox

# The noxfile runs on the interpreter that runs nox, which may be 3.10.
toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")

ROOT = Path(__file__).resolve().parent
PYTHONS = ("3.10", "3.11", "3.12", "3.13")

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"

# A shell without job control starts background commands with SIGINT ignored,
# and every child inherits that, down to Ray's workers. ray.cancel() (without
# force) raises KeyboardInterrupt in a running task through Python's SIGINT
# handling, so it would silently do nothing and the cancellation tests fail.
# Handling SIGINT here gives every process the sessions start the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# --- interpreters -----------------------------------------------------------


_PRINT_VERSION = "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"


def _probe(executable: Path) -> tuple[str, Path] | None:
    """``(X.Y, real executable)`` of an interpreter, or None if it does not run.

    A pyenv shim runs (or fails, for a version that is not active) and reports
    the binary behind it, which is what gets linked.
    """
    try:
        proc = subprocess.run(
            [str(executable), "-c", _PRINT_VERSION],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    version, _, real = proc.stdout.strip().partition(" ")
    return version, Path(real)


def _candidates(version: str) -> Iterator[Path]:
    name = f"python{version}"
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder:
            yield Path(folder) / name
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    installs = [
        path
        for path in (pyenv_root / "versions").glob(f"{version}.*")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", path.name)
    ]
    installs.sort(key=lambda path: int(path.name.rsplit(".", 1)[1]), reverse=True)
    for install in installs:
        yield install / "bin" / name
    uv = _uv()
    if uv is not None:
        find = ["python", "find", "--managed-python", "--no-python-downloads"]
        proc = subprocess.run(
            [uv, *find, version],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            yield Path(proc.stdout.strip())


def _uv() -> str | None:
    """uv beside the running nox (``pip install 'nox[uv]'``) or on ``PATH``."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def _find_interpreter(version: str) -> Path | None:
    for candidate in _candidates(version):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            probed = _probe(candidate)
            if probed is not None and probed[0] == version:
                return probed[1]
    return None


def _expose_interpreters() -> tuple[list[str], list[str]]:
    """Link the interpreters found into ``.nox/_pythons``, first on ``PATH``."""
    links = ROOT / ".nox" / "_pythons"
    links.mkdir(parents=True, exist_ok=True)
    found: list[str] = []
    missing: list[str] = []
    for version in PYTHONS:
        link = links / f"python{version}"
        link.unlink(missing_ok=True)
        executable = _find_interpreter(version)
        if executable is None:
            missing.append(version)
            continue
        link.symlink_to(executable.resolve())
        found.append(version)
    os.environ["PATH"] = os.pathsep.join([str(links), os.environ.get("PATH", "")])
    return found, missing


FOUND_PYTHONS, MISSING_PYTHONS = _expose_interpreters()
if MISSING_PYTHONS:
    print(
        "noxfile: Python "
        + ", ".join(MISSING_PYTHONS)
        + " not found (looked on PATH, in pyenv and among uv's interpreters); "
        "their sessions will be skipped.",
        file=sys.stderr,
    )
#: ``tests_min`` runs on the oldest interpreter found (the oldest supported).
MIN_PYTHON = FOUND_PYTHONS[0] if FOUND_PYTHONS else PYTHONS[0]


# --- helpers ----------------------------------------------------------------


def _project() -> dict[str, Any]:
    pyproject = toml.loads((ROOT / "pyproject.toml").read_text())
    return dict(pyproject["project"])


def _lower_bounds() -> list[str]:
    """``name==X`` for ray, anyio and trio from pyproject's ``>=`` bounds."""
    project = _project()
    requirements = [*project["dependencies"], *project["optional-dependencies"]["trio"]]
    pins = []
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)\s*", requirement)
        if match is None:
            raise RuntimeError(f"cannot read a lower bound from {requirement!r}")
        pins.append(f"{match[1]}=={match[2]}")
    return pins


_PRINT_PINNED = """
from importlib.metadata import version
print(", ".join(f"{name} {version(name)}" for name in ("ray", "anyio", "trio")))
"""


def _pytest(session: nox.Session, *args: str) -> None:
    try:
        session.run("python", "-m", "pytest", *args, *session.posargs)
    except nox.command.CommandFailed:
        _print_ray_logs()
        raise


#: What Ray's own processes write when one of them dies or gives up.
_FATAL = re.compile(r"^\[[^]]* [EF] \d+ \d+\]|Check failed|SIG[A-Z]+ received|\*\*\* ")


def _print_ray_logs(lines: int = 15) -> None:
    """After a failed run, print what the suite's Ray logged of its own faults.

    A run that ends with status 1 and without pytest's summary may have been
    ended by Ray: a driver whose GCS stops answering exits so, and writes why
    only to the session's log files, which a CI machine throws away.
    """
    root = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "session_latest"
    logs = root / "logs"
    if not logs.is_dir():
        print(f"no Ray session logs at {logs}")
        return
    patterns = ("gcs_server.*", "raylet*.out", "raylet*.err", "python-core-driver-*")
    for path in sorted(p for pattern in patterns for p in logs.glob(pattern)):
        text = path.read_text(errors="replace").splitlines()
        faults = [line[:400] for line in text if _FATAL.search(line)][-lines:]
        if faults:
            print(f"--- {path.name}: {len(text)} lines; its last faults, last lines")
            print("\n".join([*faults, "...", *(line[:400] for line in text[-3:])]))
    print(f"--- (Ray's session logs: {logs}; files without a fault not shown)")


# --- sessions ---------------------------------------------------------------


@nox.session(python=list(PYTHONS))
def tests(session: nox.Session) -> None:
    """Run the whole suite, on asyncio and trio, on one CPython."""
    session.install(".[test]")
    _pytest(session, "-q")


@nox.session(python=MIN_PYTHON)
def tests_min(session: nox.Session) -> None:
    """Run the suite with the oldest ray, anyio and trio that we claim."""
    pins = _lower_bounds()
    session.install(".[test]", *pins, OLD_SERVE_PROTOBUF)
    session.run("python", "-c", _PRINT_PINNED)
    _pytest(session, "-q")


#: The Rays ``tests_ray`` runs the suite on: the oldest supported, one from the
#: middle of the range, and the newest release (no pin).
RAYS = {"2.48": "ray[client]==2.48.0", "2.54": "ray[client]==2.54.1", "newest": ""}

#: Serve of Ray 2.48 reads ``FieldDescriptor.label``, which protobuf 7 removed:
#: the sessions on older Rays keep protobuf 6 (Ray itself allows any).
OLD_SERVE_PROTOBUF = "protobuf<7"


@nox.session(python="3.11")
@nox.parametrize("ray", list(RAYS), ids=list(RAYS))
def tests_ray(session: nox.Session, ray: str) -> None:
    """Run the whole suite on one Ray release (Python 3.11)."""
    pins = [RAYS[ray], OLD_SERVE_PROTOBUF] if RAYS[ray] else []
    session.install(".[test]", *pins)
    session.run("python", "-c", _PRINT_PINNED)
    _pytest(session, "-q")


@nox.session(python="3.11")
def tests_uvloop(session: nox.Session) -> None:
    """Run the whole suite with the asyncio half on uvloop."""
    session.install(".[test]", "uvloop")
    session.env["RAY_ANYIO_TEST_UVLOOP"] = "1"
    _pytest(session, "-q")


@nox.session
def lint(session: nox.Session) -> None:
    """``ruff check`` and ``ruff format --check``."""
    # Only the linter: it needs neither the package nor Ray.
    session.install(*_project()["optional-dependencies"]["lint"])
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` on the package, the tests and the type-assertion file."""
    session.install(".[typecheck]")
    # The files (src, tests, docs, noxfile.py) are listed in pyproject.toml.
    session.run("mypy", "--strict")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs (warnings are errors) and run every example in them."""
    session.install(".[docs,test]")
    build = ROOT / "docs" / "_build"
    shutil.rmtree(build, ignore_errors=True)
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(build / "html")
    )
    _pytest(session, "-q", "tests/test_docs_pages.py", "tests/test_docs_examples.py")


@nox.session
def bench(session: nox.Session) -> None:
    """The quick benchmark: ``python benchmarks/run.py --quick``."""
    session.install(".[trio,plot]")
    session.run("python", "benchmarks/run.py", "--quick", *session.posargs)


def _multihost_missing() -> str | None:
    """Why the namespaces cannot be made here (``tests/multihost/network.py``)."""
    path = ROOT / "tests" / "multihost" / "network.py"
    spec = importlib.util.spec_from_file_location("_multihost_network", path)
    assert spec is not None and spec.loader is not None
    network = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = network  # its dataclass looks its module up there
    spec.loader.exec_module(network)
    reason: str | None = network.missing()
    return reason


@nox.session(python="3.11")
def tests_multihost(session: nox.Session) -> None:
    """Run the multi-host tests on hosts made of network namespaces (root)."""
    reason = _multihost_missing()
    if reason is not None:
        session.skip(f"multi-host tests: {reason}")
    session.install(".[test]")
    # Builds the hosts, runs pytest in the head's namespace, always tears down.
    session.run(
        "python", "-m", "tests.multihost.hosts", "pytest", "-q", *session.posargs
    )
