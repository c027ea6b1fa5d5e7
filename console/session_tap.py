"""
What the console does around a session besides showing it: records it
(when the operator or the settings turn recording on) and, when it ends,
uploads its transcript (chat, events and the operator's notes) to the
gateway.  It sits between the session core and the session window's UI,
on the reactor thread.
"""

from twisted.internet import threads
from zope.interface import implementer

from console.interfaces import IConsoleUI
from console.recording import Recorder
from wire import logs


@implementer(IConsoleUI)
class SessionTap:
    """
    Forwards everything to C{ui}, writes frames, the pointer, chat and events
    to a L{Recorder} while recording, and calls C{ended(session)} once the
    session is over (after closing the recording).
    """

    log = logs.logger(__name__)

    def __init__(self, ui, clock, ended):
        self._ui = ui
        self._clock = clock
        self._ended = ended
        self.session = None
        self.recorder: Recorder | None = None
        self._size = (0, 0)

    def __getattr__(self, name):
        return getattr(self._ui, name)

    # -- recording (reactor thread) -------------------------------------------------------

    def start_recording(self, directory: str, label: str, forced_directory: str | None = None) -> str:
        """Start writing the session to a new file in C{directory}; returns its path."""
        if self.recorder is None or self.recorder.closed:
            self.recorder = Recorder(
                directory, self._clock, forced_directory=forced_directory, label=label, monitor_size=self._size,
                run_in_thread=threads.deferToThread, on_error=self._recording_failed,
            )
            self.log.info("recording to {path}", path=self.recorder.path)
        return self.recorder.path

    def stop_recording(self) -> None:
        """Close the recording file (what was written stays)."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            if self.session is not None:
                recorder.catch_up(self.session.chat, self.session.events)
            recorder.close()

    def _recording_failed(self, error) -> None:
        self.log.warn("recording stopped: {problem}", problem=str(error))
        self.recorder = None

    # -- IConsoleUI ---------------------------------------------------------------------------

    def frame_received(self, frame):
        self._size = (frame.width, frame.height)
        if self.recorder is not None:
            self.recorder.frame(frame)
        self._ui.frame_received(frame)

    def cursor_moved(self, x, y, visible, shape):
        if self.recorder is not None:
            self.recorder.cursor(x, y, visible, shape)
        self._ui.cursor_moved(x, y, visible, shape)

    def chat_received(self, message):
        if self.recorder is not None and self.session is not None:
            self.recorder.catch_up(self.session.chat, self.session.events)
        self._ui.chat_received(message)

    def ended(self, reason):
        self.stop_recording()
        self._ui.ended(reason)
        self._ended(self.session)
