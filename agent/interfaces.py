"""
The seams of the agent's session core: its user interface (the customer's
panel) and the platform it acts on (screen, input, shell, system
information, clipboard, file picker).  The Tk panel, mss, pynput and a pty
implement them; tests use doubles.
"""

from zope.interface import Attribute, Interface


class IAgentUI(Interface):
    """What the session core tells and asks the customer."""

    def operator_identified(identity):
        """The operator's certificate verified; C{identity} is a L{wire.identity.OperatorIdentity}."""

    def verified():
        """The code is confirmed end to end: show "verified"."""

    def alarm(message):
        """The confirmation or the operator's certificate failed; the session stops."""

    def ask_consent(scopes, everything, duration):
        """
        Ask the customer whether the operator may use C{scopes} (all of them
        in one question when C{everything}), for C{duration} seconds (0: the
        session).  Returns a Deferred firing with the scopes allowed.
        """

    def grants_changed(grants, reason):
        """The live grants (scope → expiry or C{None}) changed, and why."""

    def activity_changed(activity):
        """What the operator is doing now: a set of C{viewing}, C{controlling}, C{shell}."""

    def chat_received(message):
        """A chat message (L{wire.session_core.ChatMessage}) from the operator."""

    def transfer_changed(transfer):
        """A file transfer (L{wire.transfers.Transfer}) started, progressed or ended."""

    def pick_file(prompt):
        """Let the customer pick a file to send; a Deferred firing with its path or C{None}."""

    def ended(reason):
        """The session is over, and why."""


class IScreenSource(Interface):
    """The customer's screen, as frames of changed tiles."""

    def monitors():
        """The monitors, a list of L{wire.screen.Monitor}."""

    def next_frame(monitor):
        """A Deferred firing with the next L{wire.screen.Frame} of monitor C{monitor}."""

    def cursor(monitor):
        """The pointer on monitor C{monitor} now, a L{wire.screen.Cursor}."""

    def stop():
        """
        Screen sharing stopped; release what it holds.  A frame still being
        waited for fires (empty); the next frame is a full one.
        """

    def windows():
        """The top-level windows the customer may choose to share alone, as (id, title) pairs."""

    def share_window(window_id):
        """
        Share only the window C{window_id} (application-only sharing), or the
        whole screen again with C{None}: everything outside that window's
        rectangle, and what other windows stacked above it cover, is black
        before it is encoded.
        """


class IInputSink(Interface):
    """Where the operator's input events go when control is granted."""

    def apply(event):
        """Carry out one L{wire.screen.InputEvent}."""

    def release_all():
        """Release every button and key still pressed (control was revoked mid-drag)."""

    def close():
        """The session ended: release everything and give back what was borrowed."""


class IShell(Interface):
    """One running shell."""

    def write(data):
        """Bytes typed by the operator."""

    def resize(columns, rows):
        """The operator's terminal changed size."""

    def close():
        """End the shell (its exit is reported as usual)."""

    def pause():
        """Stop reading output until L{resume} (the link is slow)."""

    def resume():
        """Read output again."""


class IShellFactory(Interface):
    """Starts the customer's own shell, as the customer, never elevated."""

    def open(columns, rows, output, exited):
        """
        Start a shell in a terminal of this size; C{output(bytes)} receives
        what it writes and C{exited(status, signal)} is called once at its
        end.  Returns an L{IShell}.
        """


class ISystemInfoSource(Interface):
    """Collects the customer's system information."""

    def collect():
        """A Deferred firing with a L{wire.sysinfo.SystemInfo}."""


class IClipboard(Interface):
    """The customer's clipboard."""

    def set_text(text):
        """Put text from the operator on the clipboard."""


class IPlatform(Interface):
    """Everything the agent acts on, in one place."""

    screen = Attribute("an L{IScreenSource}")
    input = Attribute("an L{IInputSink}")
    shells = Attribute("an L{IShellFactory}")
    system_info = Attribute("an L{ISystemInfoSource}")
    clipboard = Attribute("an L{IClipboard}")
    receive_directory = Attribute("the path received files go to")
