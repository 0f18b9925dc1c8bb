"""Benchmarks: engine work measured against a hand-written baseline in the same run."""
