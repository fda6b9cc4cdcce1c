"""Benchmarks (`make bench`): figures printed as tables, never timed assertions."""
