"""Benchmarks: `python -m bench [build|serve|detect|all]` (`make bench` runs all)."""
