"""Time ``ray_anyio.get`` over finished refs against ``ray.get`` in one process.

    python benchmarks/bench_get.py            # N = 100 .. 100,000 (scenario B1)
    python -m ray_anyio bench                 # every scenario, B1-B7

Both backends, ``ray.get`` of the same list and Ray's native ``asyncio.gather``
are measured in the same run, alternating run by run; figures are medians.
"""

from __future__ import annotations

import sys

from ray_anyio.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--only", "B1", *sys.argv[1:]]))
