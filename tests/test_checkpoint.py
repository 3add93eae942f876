"""The checkpoint store: round trips, digests, the run's lock, durability, checks."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_anyio._checkpoint import (
    Checkpoint,
    CheckpointBusyError,
    args_digest,
    function_digest,
)
from ray_anyio._core._outcome import Outcome

pytestmark = pytest.mark.timeout(120)

#: Opens the checkpoint named by argv[1], says so, then holds it until stdin ends.
HOLD = """
import sys
from ray_anyio._checkpoint import Checkpoint
store = Checkpoint.open(sys.argv[1], "fn")
print("holding", flush=True)
sys.stdin.read()
"""

#: Tries to open the checkpoint named by argv[1] and prints what happened.
TRY_OPEN = """
import sys
from ray_anyio._checkpoint import Checkpoint
try:
    Checkpoint.open(sys.argv[1], "fn").close()
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    print("opened")
"""

#: Commits 100 items to the checkpoint named by argv[1], then dies by SIGKILL.
COMMIT_THEN_DIE = """
import os, signal, sys
from ray_anyio._checkpoint import Checkpoint
from ray_anyio._core._outcome import Outcome
store = Checkpoint.open(sys.argv[1], "fn")
for i in range(100):
    store.commit(i, (i,), Outcome({"square": i * i}))
os.kill(os.getpid(), signal.SIGKILL)
"""

#: Prints function_digest of the function SOURCE defines, and its set's order.
DIGEST = """
import sys
from ray_anyio._checkpoint import function_digest
namespace = {"__name__": "jobs"}
exec(sys.argv[1], namespace)
print(function_digest(namespace["job"]))
print(repr(namespace["WORDS"]))
"""

SOURCE = """
WORDS = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}

def job(x, scale=2):
    def inner(y):
        return y in {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"}
    return inner(x) * scale
"""


def python(code: str, *args: str, **env: str) -> subprocess.Popen[str]:
    """A Python process running ``code``; its stdin and stdout are pipes."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


@contextlib.contextmanager
def holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds ``path`` open until the block ends."""
    with python(HOLD, str(path)) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "holding\n"
            yield proc
        finally:
            proc.kill()


def run(code: str, *args: str, **env: str) -> str:
    """What ``code`` prints, run to its end in another process."""
    with python(code, *args, **env) as proc:
        out, _ = proc.communicate()
    return out


def defined(source: str, name: str = "job") -> Callable[..., Any]:
    namespace: dict[str, Any] = {"__name__": "jobs"}
    exec(source, namespace)
    fn: Callable[..., Any] = namespace[name]
    return fn


class NeedsTwo(Exception):
    """Pickles, but does not unpickle: its ``args`` hold one of two arguments."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(a)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run.sqlite"


def test_values_round_trip(path: Path) -> None:
    values = [0, "text", b"\x00bytes", None, {"nested": [1.5, (2, 3)]}]
    with Checkpoint.open(path, "fn") as store:
        for i, value in enumerate(values):
            store.commit(i, (i, "in"), Outcome(value))
    with Checkpoint.open(path, "fn") as store:
        assert store.count() == len(values)
        for i, value in enumerate(values):
            outcome = store.restored(i, (i, "in"))
            assert outcome is not None
            assert outcome.error is None
            assert outcome.value == value


def test_errors_round_trip_apart_from_exception_values(path: Path) -> None:
    with Checkpoint.open(path, "fn") as store:
        store.commit(0, (), Outcome(error=ValueError("boom")))
        store.commit(1, (), Outcome(KeyError("a value, not an error")))
    with Checkpoint.open(path, "fn") as store:
        failed = store.restored(0, ())
        assert failed is not None
        assert isinstance(failed.error, ValueError)
        assert failed.error.args == ("boom",)
        with pytest.raises(ValueError, match="boom"):
            failed.unwrap()
        value = store.restored(1, ())
        assert value is not None
        assert value.error is None
        assert isinstance(value.value, KeyError)


def test_changed_args_or_position_are_computed_again(path: Path) -> None:
    with Checkpoint.open(path, "fn") as store:
        store.commit(0, (1, "a"), Outcome("done"))
        assert store.restored(0, (1, "a")) is not None
        assert store.restored(0, (1, "b")) is None
        assert store.restored(0, (1,)) is None
        assert store.restored(1, (1, "a")) is None


def test_changed_fn_code_is_computed_again(path: Path) -> None:
    doubled = function_digest(defined("def job(x):\n    return x * 2\n"))
    tripled = function_digest(defined("def job(x):\n    return x * 3\n"))
    assert doubled == function_digest(defined("def job(x):\n    return x * 2\n"))
    assert doubled != tripled
    with Checkpoint.open(path, doubled) as store:
        store.commit(0, (5,), Outcome(10))
    with Checkpoint.open(path, tripled) as store:
        assert store.restored(0, (5,)) is None
        store.commit(0, (5,), Outcome(15))
    with Checkpoint.open(path, doubled) as store:
        assert store.restored(0, (5,)) is None  # replaced by the other fn's row


def test_function_digest_sees_nested_code_defaults_closures_and_partials() -> None:
    base = function_digest(defined(SOURCE))
    assert function_digest(defined(SOURCE.replace('"eta"}', '"iota"}'))) != base
    assert function_digest(defined(SOURCE.replace("scale=2", "scale=3"))) != base

    def scaled(factor: int) -> Callable[[int], int]:
        return lambda x: x * factor

    assert function_digest(scaled(2)) == function_digest(scaled(2))
    assert function_digest(scaled(2)) != function_digest(scaled(3))
    assert function_digest(functools.partial(pow, 2)) != function_digest(
        functools.partial(pow, 3)
    )
    assert function_digest(len) == function_digest(len) != function_digest(abs)


def test_function_digest_is_the_same_in_another_process() -> None:
    """A rerun is another process, with its own string hashes and set orders."""
    expected = function_digest(defined(SOURCE))
    runs = [run(DIGEST, SOURCE, PYTHONHASHSEED=seed).split() for seed in "12345"]
    assert [digest for digest, *_ in runs] == [expected] * 5
    # The sets really are ordered differently from one process to the next.
    assert len({tuple(words) for _, *words in runs}) > 1


def test_second_open_in_this_process_is_refused_until_close(path: Path) -> None:
    store = Checkpoint.open(path, "fn")
    with pytest.raises(CheckpointBusyError, match=r"run\.sqlite.*another run"):
        Checkpoint.open(path, "fn")
    store.commit(0, (), Outcome(1))  # the refused open did not disturb it
    store.close()
    with Checkpoint.open(path, "fn") as again:
        assert again.count() == 1


def test_open_from_another_process_is_refused_while_held(path: Path) -> None:
    with Checkpoint.open(path, "fn"):
        out = run(TRY_OPEN, str(path))
        assert out.startswith("CheckpointBusyError"), out
        assert str(path) in out
    assert run(TRY_OPEN, str(path)) == "opened\n"


def test_lock_is_released_when_its_holder_is_killed(path: Path) -> None:
    with holder(path) as proc:
        with pytest.raises(CheckpointBusyError):
            Checkpoint.open(path, "fn")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        with Checkpoint.open(path, "fn") as store:
            assert store.count() == 0


def test_commits_survive_sigkill(path: Path) -> None:
    with python(COMMIT_THEN_DIE, str(path)) as proc:
        assert proc.wait() == -signal.SIGKILL
    # The commits sit in the write-ahead log, which no close has folded in.
    assert os.path.getsize(f"{path}-wal") > 0
    with Checkpoint.open(path, "fn") as store:
        assert store.count() == 100
        for i in range(100):
            outcome = store.restored(i, (i,))
            assert outcome is not None
            assert outcome.value == {"square": i * i}


def test_unpicklable_result_names_its_item_and_loses_nothing_else(
    path: Path,
) -> None:
    with Checkpoint.open(path, "fn") as store:
        store.commit(0, (0,), Outcome("kept"))
        with pytest.raises(TypeError, match=r"result of input 7: lock"):
            store.commit(7, (7,), Outcome(threading.Lock()))
        with pytest.raises(TypeError, match=r"error of input 8: ValueError"):
            store.commit(8, (8,), Outcome(error=ValueError(threading.Lock())))
        with pytest.raises(TypeError, match=r"input 9, its arguments"):
            store.commit(9, (threading.Lock(),), Outcome(1))
        store.commit(1, (1,), Outcome("after"))
        assert store.count() == 2
    with Checkpoint.open(path, "fn") as store:
        assert store.restored(7, (7,)) is None
        kept, after = store.restored(0, (0,)), store.restored(1, (1,))
        assert kept is not None and kept.value == "kept"
        assert after is not None and after.value == "after"


def test_stored_result_that_no_longer_unpickles_is_computed_again(
    path: Path,
) -> None:
    with Checkpoint.open(path, "fn") as store:
        store.commit(0, (), Outcome(error=NeedsTwo(1, 2)))
        store.commit(1, (), Outcome(error=ValueError("fine")))
        assert store.restored(0, ()) is None
        assert store.restored(1, ()) is not None


@pytest.mark.parametrize("bad", [123, b"run.sqlite", None])
def test_path_of_another_type_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"checkpoint must be a str or os\.PathLike"):
        Checkpoint.open(bad, "fn")


def test_path_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=rf"checkpoint .*{missing.name}.* not exist"):
        Checkpoint.open(missing / "run.sqlite", "fn")
    assert not missing.exists()
    with pytest.raises(ValueError, match="checkpoint must name a file"):
        Checkpoint.open("", "fn")


def test_a_file_that_is_no_checkpoint_is_refused(path: Path, tmp_path: Path) -> None:
    path.write_text("not a database\n" * 100)
    with pytest.raises(ValueError, match="is not usable"):
        Checkpoint.open(path, "fn")
    other = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
        db.commit()
    for _ in range(2):  # the refusal releases the lock
        with pytest.raises(ValueError, match="another SQLite database"):
            Checkpoint.open(other, "fn")


def test_journal_is_wal(path: Path) -> None:
    with Checkpoint.open(path, "fn") as store:
        store.commit(0, (), Outcome(0))
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_close_is_idempotent_and_ends_use(path: Path) -> None:
    store = Checkpoint.open(path, "fn")
    store.close()
    store.close()
    with pytest.raises(RuntimeError, match="is closed"):
        store.commit(0, (), Outcome(0))
    with pytest.raises(RuntimeError, match="is closed"):
        store.count()
    Checkpoint.open(path, "fn").close()


def test_made_on_one_thread_used_on_another(path: Path) -> None:
    errors: list[BaseException] = []

    def use(store: Checkpoint) -> None:
        try:
            store.commit(0, ("x",), Outcome("from a thread"))
            store.close()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=use, args=(Checkpoint.open(path, "fn"),))
    thread.start()
    thread.join()
    assert errors == []
    with Checkpoint.open(path, "fn") as store:
        outcome = store.restored(0, ("x",))
        assert outcome is not None and outcome.value == "from a thread"


def test_args_digest_follows_values() -> None:
    assert args_digest((1, "a")) == args_digest((1, "a"))
    assert args_digest((1, "a")) != args_digest(("a", 1))


# --- map(..., checkpoint=): resume -------------------------------------------------


@pytest.fixture(scope="module")
def runs() -> Iterator[Any]:
    """Counts, per key, the runs of an input (recorded by the tasks)."""
    from .helpers import Attempts, start

    actor = start(Attempts)
    yield actor
    import ray

    ray.kill(actor)


def _counted(runs: Any, run: str) -> Any:
    """A remote ``fn(x)``: records a run of ``x`` under ``run``, returns ``x * 10``."""
    import ray

    @ray.remote(max_retries=0)
    def tenfold(x: int) -> int:
        ray.get(runs.note.remote(f"{run}-{x}"))
        if x < 0:
            raise ValueError(f"negative {x}")
        return x * 10

    return tenfold


def _runs_of(runs: Any, run: str, xs: Any) -> list[int]:
    import ray

    return [len(ray.get(runs.of.remote(f"{run}-{x}"))) for x in xs]


@pytest.mark.anyio
async def test_a_second_run_restores_every_result_and_starts_nothing(
    runs: Any, tmp_path: Path
) -> None:
    import ray_anyio

    run, path = os.urandom(8).hex(), tmp_path / "run.sqlite"
    fn = _counted(runs, run)
    async with ray_anyio.map(fn, range(20), checkpoint=path) as results:
        first = [value async for value in results]
        assert results.restored == 0
    async with ray_anyio.map(fn, range(20), checkpoint=str(path)) as results:
        second = [value async for value in results]
        assert (results.restored, results.completed, results.total) == (20, 20, 20)
    assert first == second == [x * 10 for x in range(20)]
    assert _runs_of(runs, run, range(20)) == [1] * 20


@pytest.mark.anyio
async def test_a_changed_input_is_computed_again(runs: Any, tmp_path: Path) -> None:
    import ray_anyio

    run, path = os.urandom(8).hex(), tmp_path / "run.sqlite"
    fn = _counted(runs, run)
    async with ray_anyio.map(fn, [1, 2, 3], checkpoint=path) as results:
        assert [value async for value in results] == [10, 20, 30]
    async with ray_anyio.map(fn, [1, 5, 3], checkpoint=path) as results:
        assert [value async for value in results] == [10, 50, 30]
        assert results.restored == 2
    assert _runs_of(runs, run, [1, 2, 3, 5]) == [1, 1, 1, 1]


@pytest.mark.anyio
async def test_errors_are_stored_only_when_returned(runs: Any, tmp_path: Path) -> None:
    import ray_anyio

    run = os.urandom(8).hex()
    fn = _counted(runs, run)
    raised, returned = tmp_path / "raised.sqlite", tmp_path / "returned.sqlite"
    for _ in range(2):
        async with ray_anyio.map(fn, [1, -1], checkpoint=raised) as results:
            assert await anext(results) == 10
            with pytest.raises(ValueError, match="negative -1"):
                await anext(results)
    assert _runs_of(runs, run, [1, -1]) == [1, 2]  # the error was not stored
    run = os.urandom(8).hex()
    fn = _counted(runs, run)
    for _ in range(2):
        async with ray_anyio.map(
            fn, [-2], checkpoint=returned, return_exceptions=True
        ) as results:
            [error] = [value async for value in results]
            assert isinstance(error, ValueError)
    assert _runs_of(runs, run, [-2]) == [1]  # stored, then restored


@pytest.mark.anyio
async def test_a_result_that_cannot_be_pickled_is_its_items_error(
    tmp_path: Path,
) -> None:
    import ray_anyio

    async def value_of(x: int) -> Any:
        return threading.Lock() if x == 1 else x

    path = tmp_path / "run.sqlite"
    async with ray_anyio.map(
        value_of, range(3), checkpoint=path, return_exceptions=True
    ) as results:
        got = [value async for value in results]
    assert got[0] == 0 and got[2] == 2
    assert isinstance(got[1], TypeError) and "input 1" in str(got[1])
    with Checkpoint.open(path, "other") as store:
        assert store.count() == 2  # nothing else lost


@pytest.mark.anyio
async def test_a_second_live_run_on_the_file_is_refused_at_once(
    tmp_path: Path,
) -> None:
    import ray_anyio

    from .helpers import square

    path = tmp_path / "run.sqlite"
    async with ray_anyio.map(square, range(3), checkpoint=path) as results:
        with pytest.raises(CheckpointBusyError):
            async with ray_anyio.map(square, range(3), checkpoint=path):
                pass  # pragma: no cover
        assert [value async for value in results] == [0, 1, 4]


def test_bad_checkpoint_arguments(tmp_path: Path) -> None:
    import ray_anyio

    from .helpers import square

    with pytest.raises(TypeError, match="checkpoint must be a str"):
        ray_anyio.map(square, [1], checkpoint=5)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="does not exist"):
        ray_anyio.map(square, [1], checkpoint=tmp_path / "nowhere" / "run.sqlite")


#: A driver that maps over range(N) with a checkpoint, printing each result as
#: it is handed out; argv: the file, the counter actor's name, the run's key.
RESUMABLE = """
import sys, time, anyio, ray, ray_anyio
path, name, run, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ray.init(address=sys.argv[5], log_to_driver=False)
runs = ray.get_actor(name, namespace="checkpoint-tests")

@ray.remote(max_retries=0)
def tenfold(x):
    ray.get(runs.note.remote(f"{run}-{x}"))
    time.sleep(0.02)
    return x * 10

async def main():
    async with ray_anyio.map(
        tenfold, range(n), checkpoint=path, max_in_flight=4
    ) as results:
        async for value in results:
            print(value, flush=True)

anyio.run(main, backend=sys.argv[6])
"""


def _numbers(lines: Iterable[str], count: int | None) -> list[int]:
    """The first ``count`` (None: all) lines that are numbers, as ints.

    Ray prints warnings of its own on a driver's stdout (a raylet's "8 PYTHON
    worker processes have been started"): those lines are not the run's.
    """
    found: list[int] = []
    for line in lines:
        if line.strip().isdigit():
            found.append(int(line))
            if len(found) == count:
                break
    return found


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_driver_killed_mid_run_resumes_to_the_same_output(
    backend: str, tmp_path: Path, ray_cluster: Any
) -> None:
    import ray

    from .helpers import Attempts

    name, run, n = os.urandom(8).hex(), os.urandom(8).hex(), 60
    counter = Attempts.options(name=name, namespace="checkpoint-tests").remote()  # type: ignore[attr-defined]
    path = str(tmp_path / "run.sqlite")
    argv = [sys.executable, "-c", RESUMABLE, path, name, run, str(n)]
    argv += [ray_cluster.address, backend]
    try:
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert first.stdout is not None
        before = _numbers(first.stdout, 20)
        first.send_signal(signal.SIGKILL)  # mid-run, results in flight
        first.wait(60)
        first.stdout.close()
        again = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, check=True
        )
        # The resumed run hands out every result: the stored ones, then the rest.
        after = _numbers(again.stdout.splitlines(), None)
        assert after == [x * 10 for x in range(n)] and before == after[:20]
        counts = [len(ray.get(counter.of.remote(f"{run}-{x}"))) for x in range(n)]
        assert counts[:20] == [1] * 20  # handed out before the kill: never again
        twice = [x for x in range(n) if counts[x] > 1]
        # Only those in flight at the kill (at most 2 * max_in_flight) ran again.
        assert len(twice) <= 8 and all(20 <= x < 28 for x in twice)
    finally:
        ray.kill(counter)
