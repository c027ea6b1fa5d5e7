"""
The agent's local log: what happened, on the customer's machine only, in
C{agent.log} in the user's state directory (C{$XDG_STATE_HOME/ponte}, or
C{~/.local/state/ponte}; the directory is the user's alone, mode 0700),
rotated by size.

Events only, never content: the session code never logs frames,
keystrokes, clipboard or chat text, or file and shell data (it logs what
happened and why, e.g. C{"refused a command needing {scope}"}).  This file
enforces it as well, in case an event carries some anyway: an event with a
field named like content (L{CONTENT_KEYS}) or holding bytes is not
written, and every line is cut at L{MAX_LINE} characters.
"""

import os
import threading

from twisted.logger import (
    FilteringLogObserver,
    PredicateResult,
    formatEvent,
    formatTime,
    globalLogPublisher,
)
from twisted.python.logfile import LogFile

FILE_NAME = "agent.log"
ROTATE_LENGTH = 1024 * 1024
MAX_ROTATED_FILES = 5
MAX_LINE = 300

# Field names that would hold what the customer or the operator typed,
# saw or sent rather than what happened.
CONTENT_KEYS = frozenset({
    "body", "chat", "clipboard", "content", "data", "frame", "frames", "input", "key", "keys",
    "keystroke", "keystrokes", "output", "payload", "pixels", "text", "tile", "tiles",
})


def state_directory(environ=None) -> str:
    """Where the agent keeps its state: C{$XDG_STATE_HOME/ponte} or C{~/.local/state/ponte}."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec ignores relative paths
        base = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "ponte")


def _private_directory(path: str, tighten: bool) -> None:
    """
    Create C{path} (and missing parents) with mode 0700; if it exists
    already, make it 0700 only when C{tighten} (the agent's own state
    directory, not one the caller named).
    """
    missing = []
    head = os.path.abspath(path)
    while not os.path.isdir(head):
        missing.append(head)
        head = os.path.dirname(head)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # whatever the umask
    if tighten:
        os.chmod(path, 0o700)


def without_content(event: dict) -> PredicateResult:
    """The filter: no event that carries content (see the module's docstring)."""
    for name, value in event.items():
        if name in CONTENT_KEYS or isinstance(value, (bytes, bytearray, memoryview)):
            return PredicateResult.no
    return PredicateResult.maybe


def format_line(event: dict, max_line: int = MAX_LINE) -> str:
    """One event as one line: time, level, namespace, message (cut at C{max_line})."""
    when = formatTime(event.get("log_time"), timeFormat="%Y-%m-%dT%H:%M:%S%z")
    level = getattr(event.get("log_level"), "name", "-")
    namespace = event.get("log_namespace", "-")
    message = formatEvent(event)
    failure = event.get("log_failure")
    if failure is not None:
        try:
            message = f"{message} ({failure.type.__name__}: {failure.getErrorMessage()})"
        except Exception:
            pass
    line = f"{when} [{level}] {namespace}: {message}"
    line = " ".join(line.split())  # one line: no newlines or tabs from the message
    if len(line) > max_line:
        line = line[: max_line - 1] + "…"
    return line + "\n"


class LocalLog:
    """
    The running local log: L{observer} is on the global log publisher
    until L{stop}; L{path} is the current file.
    """

    def __init__(self, directory: str, rotate_length: int, max_rotated_files: int, max_line: int, publisher):
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)
        self.max_line = max_line
        self._publisher = publisher
        self._lock = threading.Lock()
        self._file = LogFile(FILE_NAME, directory, rotateLength=rotate_length, defaultMode=0o600,
                             maxRotatedFiles=max_rotated_files)
        self.observer = FilteringLogObserver(self._write, [without_content])
        publisher.addObserver(self.observer)

    def _write(self, event: dict) -> None:
        line = format_line(event, self.max_line)
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(line)
                self._file.flush()
            except OSError:
                pass  # a full disk must not stop the agent; nothing to report it to

    def stop(self) -> None:
        """Stop logging to the file and close it."""
        self._publisher.removeObserver(self.observer)
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def start_local_log(directory: str | None = None, rotate_length: int = ROTATE_LENGTH,
                    max_rotated_files: int = MAX_ROTATED_FILES, max_line: int = MAX_LINE,
                    publisher=globalLogPublisher) -> LocalLog:
    """
    Start writing the log events of C{publisher} to C{agent.log} in
    C{directory} (default: L{state_directory}; created 0700 if missing,
    and the default one is made 0700 if it exists), rotated at
    C{rotate_length} bytes keeping C{max_rotated_files} old files
    (C{agent.log.1} the newest).  Returns the L{LocalLog}; call its
    C{stop} to end.
    """
    tighten = directory is None
    directory = state_directory() if directory is None else directory
    _private_directory(directory, tighten)
    return LocalLog(directory, rotate_length, max_rotated_files, max_line, publisher)
