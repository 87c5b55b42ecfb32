"""Benchmarks of the operator on the local cluster, against Flagger doing the equivalent work.

`make bench` (`python -m bench.run`); see docs/performance.md for what is measured and why.
"""
