"""
A bound on the size of one AMP box.  AMP limits each value to 64 KiB but not
the number of keys in a box, so a peer could make a box as large as it
likes; both the gateway and the session channel count bytes against a limit.
"""


class BoxBound:
    """Counts the bytes received since the last complete box, against C{limit}."""

    def __init__(self, limit: int):
        self.limit = limit
        self._bytes = 0

    def over(self, size: int) -> bool:
        """Count C{size} more bytes; whether the box in progress is now too large."""
        self._bytes += size
        return self._bytes > self.limit

    def box_received(self) -> None:
        """A whole box arrived: start counting the next one."""
        self._bytes = 0
