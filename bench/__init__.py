"""Benchmarks that print ratios measured in the same run (``make bench``)."""
