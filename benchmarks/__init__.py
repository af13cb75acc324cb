"""Benchmarks: planner throughput and the task suite."""
