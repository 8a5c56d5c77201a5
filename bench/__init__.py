"""Benchmarks: scripts that print a figure beside a baseline measured in the same run (never tests)."""
