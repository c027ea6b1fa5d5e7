"""
The console's side of a session, without a display: it answers the
agent's code confirmation, then drives the support tools (consent, chat,
files, system information, shell, screen, input, clipboard) and tells its
L{IConsoleUI} what the customer's side does.
"""

import uuid

import attrs
from twisted.internet import defer, threads

from console.interfaces import IConsoleUI
from wire import confirm, e2e, files, logs, sysinfo
from wire import session_commands as sc
from wire.screen import ENCODINGS, Frame, InputEvent, Monitor, Tile
from wire.session_core import CONFIRMING, ENDED, SessionCore

ALARMS = {
    confirm.CodeMismatch: "A customer joined with a wrong code. The session was stopped; they may try again.",
    confirm.ChannelMismatch: (
        "Possible interception: the customer's program knows the code but is not directly "
        "connected to you. The session was stopped and reported."
    ),
}
_REMOTE = {confirm.CodeMismatch: sc.CodeMismatch, confirm.ChannelMismatch: sc.ChannelMismatch}
MAX_FRAME_SIDE = 16384


def new_id() -> str:
    """A fresh id for a transfer or a shell."""
    return uuid.uuid4().hex


class ConsoleSession(SessionCore):
    """
    One session with a customer.  C{code} is the whole code (routing and
    secret part); C{report_failure()} tells the gateway that a confirmation
    failed (it counts them and burns the code after three).
    """

    log = logs.logger(__name__)
    me = "operator"
    peer = "customer"

    def __init__(self, clock, ui: IConsoleUI, code: str, certificate_pem: bytes, key_pem: bytes,
                 receive_directory: str, report_failure, limits: sc.SessionLimits = sc.SessionLimits()):
        super().__init__(clock, limits, ui, files.ReceivingDirectory(receive_directory, limits.max_file_size))
        self.code = code
        self._certificate_pem = certificate_pem
        self._key_pem = key_pem
        self._report_failure = report_failure
        self._run: confirm.Confirmation | None = None
        self._failed = False
        self.grants: dict[str, float | None] = {}
        self._requested: set[str] = set()
        self._frames: dict[int, list[Tile]] = {}
        self._frame_bytes = 0
        self._monitor: int | None = None
        self.rating: tuple[int, str] | None = None

    def make_layers(self):
        """The relay leg to give to C{Attach}: end-to-end TLS carrying this session."""
        return e2e.console_layers(self.make_channel(), self._certificate_pem, self._key_pem)

    # -- confirmation -----------------------------------------------------------------

    @sc.Pake.responder
    def pake(self, version, message):
        if version != sc.SESSION_PROTOCOL_VERSION:
            raise sc.VersionMismatch(
                f"the customer's agent speaks session protocol {version}, this console {sc.SESSION_PROTOCOL_VERSION}"
            )
        if self.state != CONFIRMING or self._run is not None:
            raise sc.CodeMismatch("the confirmation has already started")
        self._run = confirm.Confirmation(confirm.CONSOLE, self.code, self.channel.exporter())
        mine = self._run.start()
        self._check(lambda: self._run.finish(message))
        return {"version": sc.SESSION_PROTOCOL_VERSION, "message": mine}

    @sc.Confirm.responder
    def confirm_(self, code_mac, channel_mac):
        if self._run is None or self.state != CONFIRMING:
            raise sc.CodeMismatch("no confirmation is running")
        self._check(lambda: self._run.check(code_mac, channel_mac))
        code_mac, channel_mac = self._run.proof()
        self.verified_now()
        return {"code_mac": code_mac, "channel_mac": channel_mac}

    def _check(self, step) -> None:
        try:
            step()
        except confirm.ConfirmationFailed as e:
            # Answer first (the agent shows its own alarm), then stop, and
            # only then report: the gateway undoes the pairing at once.
            self._failed = True
            self.clock.callLater(0, self.alarm, ALARMS[type(e)], graceful=True)
            raise _REMOTE[type(e)](str(e)) from e

    def channel_lost(self, problem):
        if self._failed:
            self._report_failure()
        super().channel_lost(problem)

    # -- consent -----------------------------------------------------------------------

    def request_consent(self, scopes, everything: bool = False, duration: float = 0.0) -> defer.Deferred:
        """Ask the customer for C{scopes}; fires with C{granted} and C{denied} lists."""
        self.record("asked", ", ".join(scopes))
        return self.channel.callRemote(sc.RequestConsent, scopes=list(scopes), everything=everything, duration=duration)

    @sc.GrantsChanged.responder
    def grants_received(self, grants, reason):
        self.grants = {g["scope"]: g.get("expires_at") for g in grants if g["scope"] in sc.SCOPES}
        self.record("grants", reason)
        self.ui.grants_changed(dict(self.grants), reason)
        return {}

    # -- files ----------------------------------------------------------------------------

    def send_file(self, path: str) -> defer.Deferred:
        """Send a local file to the customer; fires with the finished transfer."""

        async def send():
            # Hashing a large file takes seconds: not on the reactor thread.
            outgoing = await threads.deferToThread(files.Outgoing.open, path, new_id())
            return await self.outbound.send(self.channel, outgoing)

        return defer.ensureDeferred(send())

    def request_file(self, prompt: str) -> defer.Deferred:
        """Ask the customer to pick a file and send it; fires with its transfer id."""
        transfer_id = new_id()
        self._requested.add(transfer_id)
        d = self.channel.callRemote(sc.RequestFile, transfer_id=transfer_id, prompt=prompt)
        return d.addCallback(lambda _: transfer_id)

    def check_receive(self, transfer_id):
        if transfer_id not in self._requested:
            raise sc.Refused("the operator did not ask for this file")

    def cancel_transfer(self, transfer_id: str, reason: str = "cancelled by the operator") -> None:
        self._requested.discard(transfer_id)
        super().cancel_transfer(transfer_id, reason)

    # -- system information, shell, clipboard -------------------------------------------------------

    def system_info(self) -> defer.Deferred:
        """The customer's L{wire.sysinfo.SystemInfo}."""
        d = self.channel.callRemote(sc.GetSystemInfo)
        return d.addCallback(lambda answer: sysinfo.from_json(answer["info"]))

    def open_shell(self, columns: int = 80, rows: int = 24) -> defer.Deferred:
        """Start the customer's shell; fires with its id."""
        shell_id = new_id()
        d = self.channel.callRemote(sc.OpenShell, shell_id=shell_id, columns=columns, rows=rows)
        return d.addCallback(lambda _: shell_id)

    def shell_input(self, shell_id: str, data: bytes) -> defer.Deferred:
        """Type C{data} into a shell."""
        return self.channel.callRemote(sc.ShellInput, shell_id=shell_id, data=data)

    def resize_shell(self, shell_id: str, columns: int, rows: int) -> defer.Deferred:
        """Tell a shell its terminal's new size."""
        return self.channel.callRemote(sc.ResizeShell, shell_id=shell_id, columns=columns, rows=rows)

    def close_shell(self, shell_id: str) -> defer.Deferred:
        """End a shell."""
        return self.channel.callRemote(sc.CloseShell, shell_id=shell_id)

    @sc.ShellOutput.responder
    def shell_output(self, shell_id, data):
        self.ui.shell_output(shell_id, data)
        return {}

    @sc.ShellExited.responder
    def shell_exited(self, shell_id, status=None, signal=None):
        self.ui.shell_exited(shell_id, status, signal)
        return {}

    def send_clipboard(self, text: str) -> defer.Deferred:
        """Put text on the customer's clipboard."""
        return self.channel.callRemote(sc.Clipboard, text=text)

    @sc.Clipboard.responder
    def clipboard(self, text):
        self.ui.clipboard_received(text)
        return {}

    @sc.Rate.responder
    def rated(self, stars, comment):
        if not 1 <= stars <= 5 or len(comment) > self.limits.max_comment_chars:
            raise sc.BadRequest(f"a rating is 1 to 5 stars with at most {self.limits.max_comment_chars} characters")
        self.rating = (stars, comment)
        self.record("rated", f"{stars} stars")
        self.ui.rated(stars, comment)
        return {}

    # -- screen and input -----------------------------------------------------------------------

    def monitors(self) -> defer.Deferred:
        """The customer's monitors."""
        d = self.channel.callRemote(sc.ListMonitors)
        return d.addCallback(lambda answer: [Monitor(**m) for m in answer["monitors"]])

    def watch(self, monitor: int, credit: int = 2) -> defer.Deferred:
        """Start receiving frames of C{monitor}, C{credit} of them ahead."""
        self._monitor = monitor
        return self.channel.callRemote(sc.RequestFrames, monitor=monitor, credit=credit)

    def frame_shown(self) -> None:
        """The UI drew a frame: allow one more."""
        if self._monitor is not None and self.state != ENDED:
            d = self.channel.callRemote(sc.RequestFrames, monitor=self._monitor, credit=1)
            d.addErrback(lambda f: self.log.info("frame credit refused: {problem}", problem=str(f.value)))

    @sc.FrameUpdate.responder
    def frame_update(self, frame, monitor, width, height, tiles, last):
        if not (0 < width <= MAX_FRAME_SIDE and 0 < height <= MAX_FRAME_SIDE):
            raise sc.BadRequest(f"a frame of {width}×{height} pixels")
        if len(tiles) > self.limits.max_tiles_per_update:
            raise sc.BadRequest(f"more than {self.limits.max_tiles_per_update} tiles in one update")
        parts = self._frames.setdefault(frame, [])
        for t in tiles:
            tile = Tile(**t)
            if tile.encoding not in ENCODINGS:
                raise sc.BadRequest(f"unknown tile encoding {tile.encoding!r}")
            if tile.x < 0 or tile.y < 0 or tile.width <= 0 or tile.height <= 0 or \
                    tile.x + tile.width > width or tile.y + tile.height > height:
                raise sc.BadRequest("a tile outside its frame")
            self._frame_bytes += len(tile.data)
            parts.append(tile)
        if self._frame_bytes > 16 * self.limits.max_box_bytes:
            self._frames.clear()
            self._frame_bytes = 0
            raise sc.BadRequest("a frame larger than allowed")
        if last:
            self._frame_bytes = 0
            self.ui.frame_received(Frame(monitor, width, height, tuple(self._frames.pop(frame))))
        return {}

    @sc.CursorUpdate.responder
    def cursor(self, x, y, visible, shape=None):
        self.ui.cursor_moved(x, y, visible, shape)
        return {}

    def send_input(self, event: InputEvent) -> defer.Deferred:
        """Forward one input event (the agent drops it unless control is granted)."""
        fields = {k: v for k, v in attrs.asdict(event).items() if v is not None}
        return self.channel.callRemote(sc.Input, **fields)
