"""``_core/_serve.py``: Serve never imported by us; the router's bursts, each once.

The responses of a real Serve application are tested in ``tests/test_serve.py``;
here, what holds without one.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import threading
from typing import Any

import anyio
import pytest
import ray

from ray_anyio._core import _serve

pytestmark = pytest.mark.timeout(60)


def test_importing_the_package_leaves_serve_unimported() -> None:
    code = (
        "import sys, ray_anyio\n"
        "from ray_anyio._core import _serve\n"
        "assert 'ray.serve' not in sys.modules, 'ray.serve was imported'\n"
        "assert not _serve.is_response(object())\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_refs_and_plain_objects_are_no_responses() -> None:
    ref = ray.put(1)
    for obj in (ref, 1, None, [ref]):
        assert not _serve.is_response(obj)
        assert not _serve.is_response_generator(obj)


def test_the_private_methods_have_the_expected_signatures() -> None:
    handle = pytest.importorskip("ray.serve.handle")
    unary = handle.DeploymentResponse._to_object_ref_sync
    streaming = handle.DeploymentResponseGenerator._to_object_ref_gen_sync
    # Every Ray since 2.48 takes the keyword; a Ray without it still works
    # (the call is then made without it, on a worker thread if need be).
    assert _serve._takes_allow_keyword(unary)
    assert _serve._takes_allow_keyword(streaming)


class _Pending:
    """Stands for a response: only its router future is read by ``_bursts``."""

    def __init__(self) -> None:
        self._replica_result_future: concurrent.futures.Future[int] = (
            concurrent.futures.Future()
        )


@pytest.mark.anyio
async def test_bursts_take_every_position_once() -> None:
    responses = [_Pending() for _ in range(200)]
    responses[3]._replica_result_future.set_result(3)  # done before: at once
    taken: list[int] = []
    bursts: list[int] = []

    def take(positions: list[int]) -> None:
        bursts.append(len(positions))
        taken.extend(positions)

    def finish() -> None:  # the router's thread
        for position, response in enumerate(responses):
            if position != 3:
                response._replica_result_future.set_result(position)

    async with anyio.create_task_group() as tg:
        tg.start_soon(_serve._bursts, responses, take)
        with anyio.fail_after(10):  # until _bursts waits on every future
            futures: list[Any] = [r._replica_result_future for r in responses]
            while not all(f.done() or f._done_callbacks for f in futures):
                await anyio.sleep(0)
        router = threading.Thread(target=finish)
        router.start()
        router.join()  # the loop is blocked meanwhile: every callback, one wake
    assert sorted(taken) == list(range(200))
    assert bursts == [1, 199]


@pytest.mark.anyio
async def test_bursts_cancelled_leave_the_futures_alone() -> None:
    responses: list[Any] = [_Pending() for _ in range(3)]
    with anyio.move_on_after(0.05):
        await _serve._bursts(responses, lambda positions: None)
    assert not any(r._replica_result_future.cancelled() for r in responses)
    for response in responses:  # a late callback wakes nobody, and is no error
        response._replica_result_future.set_result(0)
