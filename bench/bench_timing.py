"""Timing policy shared by the PyTorch reference scripts (the same as the TS benches):
warm up, then time single calls until both the minimum run count and the time budget
are met, and report the median, which resists outliers."""
import statistics
import time


def median_seconds(fn, warmup, min_runs, max_runs, budget):
    for _ in range(warmup):
        fn()
    times = []
    deadline = time.perf_counter() + budget
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
