"""Benchmarks of issue 8 (``make bench``): sizes, baselines measured in the same run, targets as ratios."""
