"""The benchmark suite, B1-B7: ``python benchmarks/run.py`` (not part of the wheel)."""
