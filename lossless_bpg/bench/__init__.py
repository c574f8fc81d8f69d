"""Benchmark: this codec beside the lossless baselines, measured in one run on real files."""
