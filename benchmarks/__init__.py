"""Benchmark harness: a synthetic A2DP-streaming btsnoop generator and a timing runner.

Not part of the installed package; run from the repository root as ``python -m benchmarks.run``.
"""
