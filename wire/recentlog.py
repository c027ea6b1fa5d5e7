"""
The last lines a program logged, kept in memory so that the operator can
send them with "Report a problem" (the console keeps no log file).
"""

import collections

from twisted.logger import eventAsText, globalLogPublisher


class RecentLog:
    """A bounded memory of formatted log lines."""

    def __init__(self, lines: int = 2000, max_line: int = 500):
        self._lines = collections.deque(maxlen=lines)
        self._max_line = max_line

    @classmethod
    def start(cls, publisher=globalLogPublisher, **limits) -> "RecentLog":
        """A recent log listening to C{publisher}."""
        recent = cls(**limits)
        publisher.addObserver(recent)
        return recent

    def __call__(self, event: dict) -> None:
        text = eventAsText(event, includeSystem=False)
        self._lines.append(text[: self._max_line])

    def lines(self) -> list[str]:
        """The lines kept, oldest first."""
        return list(self._lines)
