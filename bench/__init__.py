"""Benchmarks: Headcount against the machine's own limits, measured in the same run."""
