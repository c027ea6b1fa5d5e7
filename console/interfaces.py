"""
The seam between the console's session core and its user interface (the
Tk session window; tests use a double).
"""

from zope.interface import Interface


class IConsoleUI(Interface):
    """What the session core tells the operator."""

    def verified():
        """The customer's agent confirmed the code: the session is live."""

    def alarm(message):
        """The confirmation failed (wrong code, or possible interception); the session stops."""

    def grants_changed(grants, reason):
        """The customer's live grants (scope → expiry or C{None}) changed, and why."""

    def chat_received(message):
        """A chat message (L{wire.session_core.ChatMessage}) from the customer."""

    def transfer_changed(transfer):
        """A file transfer (L{wire.transfers.Transfer}) started, progressed or ended."""

    def frame_received(frame):
        """A complete L{wire.screen.Frame} arrived; call C{frame_shown} on the core when drawn."""

    def cursor_moved(x, y, visible, shape):
        """The customer's pointer moved (C{shape} is C{None} when unchanged)."""

    def shell_output(shell_id, data):
        """Bytes the customer's shell wrote."""

    def shell_exited(shell_id, status, signal):
        """The customer's shell ended."""

    def clipboard_received(text):
        """The customer sent clipboard text."""

    def ended(reason):
        """The session is over, and why."""

    def rated(stars, comment):
        """The customer rated the session (after it ended)."""
