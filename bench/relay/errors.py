"""The benchmark's one error type."""


class BenchError(Exception):
    """The benchmark cannot go on; the message says what failed and where."""
