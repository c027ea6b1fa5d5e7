"""Reproducible benchmarks of Ponte (see each sub-package's README.md)."""
