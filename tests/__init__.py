"""Ponte's tests: run with `make test` (trial)."""
