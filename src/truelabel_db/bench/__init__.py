"""Benchmarks: each hot path measured side by side with its reference, in one run."""
