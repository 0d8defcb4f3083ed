"""sora-widgets benchmarks: each measure against the baseline a user would otherwise use, in one run.

Run `python -m bench` (or `python bench/run.py`) from the repository root; `--quick` for a small size.
"""
