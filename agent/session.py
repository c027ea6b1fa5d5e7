"""
The agent's side of a session, without a display: it checks the operator's
certificate, confirms the code, and then serves the operator's commands,
each one only within what the customer granted (whatever the console's
user interface would or would not send).  It talks to the customer through
an L{IAgentUI} and acts on the machine through an L{IPlatform}.
"""

import attrs
from twisted.internet import defer, threads

from agent.grants import Grants
from agent.interfaces import IAgentUI, IPlatform
from wire import commands, confirm, e2e, files, logs, sysinfo
from wire import session_commands as sc
from wire.screen import Frame, InputEvent
from wire.session_core import ENDED, ENDING, SessionCore

ALARMS = {
    confirm.CodeMismatch: "This code does not match the operator's — check it with them. The session was stopped.",
    confirm.ChannelMismatch: (
        "Possible interception: the operator's side knows the code but is not directly "
        "connected to you. The session was stopped."
    ),
}


class AgentSession(SessionCore):
    """
    One customer session.  C{code} is the whole code the customer typed
    (normalised); C{operator_ca_pem} the operator CA the agent trusts.
    """

    log = logs.logger(__name__)
    me = "customer"
    peer = "operator"

    def __init__(self, clock, ui: IAgentUI, platform: IPlatform, code: str, operator_ca_pem: bytes,
                 limits: sc.SessionLimits = sc.SessionLimits()):
        super().__init__(clock, limits, ui, files.ReceivingDirectory(platform.receive_directory, limits.max_file_size))
        self.platform = platform
        self.code = code
        self.operator_ca_pem = operator_ca_pem
        self.operator = None
        self.grants = Grants(clock, self._grants_changed)
        self._granted_before: set[str] = set()
        self._shells: dict[str, object] = {}
        self._shell_output_pending = 0
        self._screen = None  # (monitor, credit) while sharing
        self._screen_running = False
        self._frame_number = 0
        self._cursor = None
        self._last_monitor = 0
        self._sending: set[str] = set()
        self.layers: e2e.AgentLayers | None = None

    def make_layers(self) -> e2e.AgentLayers:
        """The relay leg to give to C{Join}: end-to-end TLS carrying this session."""
        self.layers = e2e.AgentLayers(self.make_channel(), self.operator_ca_pem)
        return self.layers

    async def join(self, client, routing: str) -> None:
        """
        Join the session behind C{routing} on C{client} (a gateway
        connection after Hello and Lookup); returns once an operator attached.
        """
        layers = self.make_layers()
        await client.switch(commands.Join, layers, routing=routing)
        await layers.paired

    # -- confirmation -----------------------------------------------------------------

    def channel_ready(self, channel):
        super().channel_ready(channel)
        try:
            self.operator = e2e.operator_of(channel)
        except Exception as e:  # a certificate we cannot read is not trusted
            self.alarm(f"the operator's certificate cannot be read: {e}")
            return
        self.record("operator", f"{self.operator.display_name} ({self.operator.username}) of {self.operator.organisation}")
        self.ui.operator_identified(self.operator)
        defer.ensureDeferred(self._confirm(channel))

    async def _confirm(self, channel) -> None:
        run = confirm.Confirmation(confirm.AGENT, self.code, channel.exporter())
        try:
            answer = await channel.callRemote(sc.Pake, version=sc.SESSION_PROTOCOL_VERSION, message=run.start())
            run.finish(answer["message"])
            proof = await channel.callRemote(sc.Confirm, **dict(zip(("code_mac", "channel_mac"), run.proof())))
            run.check(proof["code_mac"], proof["channel_mac"])
        except (confirm.ChannelMismatch, sc.ChannelMismatch):
            self.alarm(ALARMS[confirm.ChannelMismatch])
            return
        except (confirm.ConfirmationFailed, sc.CodeMismatch):
            self.alarm(ALARMS[confirm.CodeMismatch])
            return
        except sc.VersionMismatch as e:
            self.alarm(f"The operator's program speaks another version: {e}")
            return
        except Exception:
            if self.state != ENDED:
                self.alarm(
                    "The operator's side stopped answering during the code check — possible "
                    "interception. The session was stopped."
                )
            return
        if self.state != ENDED:
            self.verified_now()

    def channel_lost(self, problem):
        if self.layers is not None and self.layers.options.problem and self.operator is None:
            problem = f"The operator could not be trusted: {self.layers.options.problem}. The session was stopped."
            self.ui.alarm(problem)
        super().channel_lost(problem)

    # -- grants -------------------------------------------------------------------------

    def _require(self, scope: str) -> None:
        if not self.grants.allowed(scope):
            self.log.warn("refused a command needing {scope}: not granted", scope=scope)
            self.record("refused", scope)
            raise sc.NotGranted(f"the customer has not allowed {scope}")

    def _grants_changed(self, reason: str) -> None:
        now = set(self.grants.current())
        for scope in self._granted_before - now:
            self._withdrawn(scope)
        self._granted_before = now
        self.record("grants", reason)
        self.ui.grants_changed(self.grants.current(), reason)
        self._activity()
        if self.channel is not None and self.state != ENDED:
            self.channel.callRemote(
                sc.GrantsChanged,
                grants=[
                    {"scope": s, **({"expires_at": e} if e is not None else {})}
                    for s, e in sorted(self.grants.current().items())
                ],
                reason=reason,
            )

    def _withdrawn(self, scope: str) -> None:
        """Stop at once whatever used a scope that is no longer granted."""
        if scope == sc.CONTROL:
            self.platform.input.release_all()
        elif scope == sc.VIEW:
            self._stop_screen()
        elif scope == sc.SEND_FILE:
            for transfer_id in self.inbound.cancel_all("the customer revoked receiving files"):
                self.channel.callRemote(sc.CancelTransfer, transfer_id=transfer_id, reason="the customer revoked it")
        elif scope == sc.RECEIVE_FILE:
            self.outbound.cancel_all("the customer revoked sending files")
        elif scope == sc.SHELL:
            for shell in list(self._shells.values()):
                shell.close()

    def _activity(self) -> None:
        activity = {"controlling"} if self.grants.allowed(sc.CONTROL) else set()
        if self._screen is not None:
            activity.add("viewing")
        if self._shells:
            activity.add("shell")
        self.ui.activity_changed(activity)

    async def close_with_rating(self, stars: int | None = None, comment: str = "") -> None:
        """
        The customer is done with the summary: send the rating (if any) to
        the operator, then close the channel.
        """
        if stars is not None and self.state == ENDING:
            try:
                await self.channel.callRemote(sc.Rate, stars=stars, comment=comment[: self.limits.max_comment_chars])
                self.record("rated", f"{stars} stars")
            except Exception as e:
                self.log.info("the rating could not be sent: {problem}", problem=str(e))
        self.close()

    def revoke(self, scope: str) -> None:
        """The customer takes one scope back (from the panel)."""
        self.grants.revoke(scope)

    def revoke_all(self) -> None:
        """The customer takes everything back."""
        self.grants.revoke_all()

    def _ending(self) -> None:
        self.grants.stop()
        self.platform.input.close()
        self._stop_screen()
        for shell in list(self._shells.values()):
            shell.close()

    # -- responders: confirmation ----------------------------------------------------------

    @sc.Pake.responder
    def pake(self, version, message):
        raise sc.CodeMismatch("the agent starts the confirmation, not the console")

    @sc.Confirm.responder
    def confirm_(self, code_mac, channel_mac):
        raise sc.CodeMismatch("the agent starts the confirmation, not the console")

    # -- responders: consent ----------------------------------------------------------------

    @sc.RequestConsent.responder
    async def request_consent(self, scopes, everything, duration):
        unknown = [s for s in scopes if s not in sc.SCOPES]
        if unknown or not scopes:
            raise sc.BadRequest(f"unknown scopes: {', '.join(unknown)}" if unknown else "no scopes asked for")
        if duration < 0 or duration > 24 * 3600:
            raise sc.BadRequest("a grant lasts between 0 (the session) and 24 hours")
        self.record("asked", ", ".join(scopes))
        allowed = await self.ui.ask_consent(list(scopes), everything, duration)
        allowed = [s for s in scopes if s in set(allowed)]
        if self.state == ENDED:
            return {"granted": [], "denied": list(scopes)}
        self.grants.grant(allowed, duration)
        return {"granted": allowed, "denied": [s for s in scopes if s not in allowed]}

    # -- responders: files ----------------------------------------------------------------------

    def check_receive(self, transfer_id):
        self._require(sc.SEND_FILE)

    @sc.RequestFile.responder
    def request_file(self, transfer_id, prompt):
        self._require(sc.RECEIVE_FILE)
        if not transfer_id or len(transfer_id) > 64 or transfer_id in self._sending:
            raise sc.BadRequest("a transfer id has 1 to 64 characters and is new")
        self._sending.add(transfer_id)
        defer.ensureDeferred(self._send_picked(transfer_id, prompt[:500]))
        return {}

    async def _send_picked(self, transfer_id: str, prompt: str) -> None:
        try:
            path = await self.ui.pick_file(prompt)
            if path is None or not self.grants.allowed(sc.RECEIVE_FILE) or self.state == ENDED:
                self.channel.callRemote(sc.CancelTransfer, transfer_id=transfer_id, reason="the customer did not pick a file")
                return
            outgoing = await threads.deferToThread(files.Outgoing.open, path, transfer_id)
            await self.outbound.send(self.channel, outgoing)
        except Exception as e:
            self.log.info("sending a file stopped: {problem}", problem=str(e))
            if self.state != ENDED:
                self.channel.callRemote(sc.CancelTransfer, transfer_id=transfer_id, reason=str(e)[:200])
        finally:
            self._sending.discard(transfer_id)

    # -- responders: system information ------------------------------------------------------

    @sc.GetSystemInfo.responder
    async def system_info(self):
        self._require(sc.SYSTEM_INFO)
        info = await self.platform.system_info.collect()
        self.record("system-info")
        return {"info": sysinfo.to_json(info)}

    # -- responders: shell -----------------------------------------------------------------------

    def _terminal_size(self, columns: int, rows: int) -> None:
        if not (1 <= columns <= 1000 and 1 <= rows <= 1000):
            raise sc.BadRequest("a terminal has 1 to 1000 columns and rows")

    def _shell(self, shell_id: str):
        self._require(sc.SHELL)
        try:
            return self._shells[shell_id]
        except KeyError:
            raise sc.UnknownShell(f"no shell {shell_id!r}") from None

    @sc.OpenShell.responder
    def open_shell(self, shell_id, columns, rows):
        self._require(sc.SHELL)
        self._terminal_size(columns, rows)
        if shell_id in self._shells or not 0 < len(shell_id) <= 64:
            raise sc.BadRequest("a shell id has 1 to 64 characters and is new")
        if len(self._shells) >= self.limits.max_shells:
            raise sc.Refused(f"at most {self.limits.max_shells} shells at once")
        self._shells[shell_id] = self.platform.shells.open(
            columns, rows, lambda data: self._shell_output(shell_id, data),
            lambda status, signal: self._shell_exited(shell_id, status, signal),
        )
        self.record("shell-opened")
        self._activity()
        return {}

    def _shell_output(self, shell_id: str, data: bytes) -> None:
        if self.state == ENDED:
            return
        shell = self._shells.get(shell_id)
        for start in range(0, len(data), self.limits.max_chunk):
            self._shell_output_pending += 1
            d = self.channel.callRemote(sc.ShellOutput, shell_id=shell_id, data=data[start : start + self.limits.max_chunk])
            d.addBoth(self._shell_output_sent, shell)
        if shell is not None and self._shell_output_pending >= self.limits.file_window:
            shell.pause()

    def _shell_output_sent(self, result, shell):
        self._shell_output_pending -= 1
        if shell is not None and self._shell_output_pending < self.limits.file_window // 2:
            shell.resume()

    def _shell_exited(self, shell_id: str, status, signal) -> None:
        self._shells.pop(shell_id, None)
        self.record("shell-exited", f"status {status}, signal {signal}")
        self._activity()
        if self.state != ENDED:
            extra = {k: v for k, v in (("status", status), ("signal", signal)) if v is not None}
            self.channel.callRemote(sc.ShellExited, shell_id=shell_id, **extra)

    @sc.ShellInput.responder
    def shell_input(self, shell_id, data):
        self._shell(shell_id).write(data)
        return {}

    @sc.ResizeShell.responder
    def resize_shell(self, shell_id, columns, rows):
        self._terminal_size(columns, rows)
        self._shell(shell_id).resize(columns, rows)
        return {}

    @sc.CloseShell.responder
    def close_shell(self, shell_id):
        shell = self._shells.get(shell_id)
        if shell is None:
            raise sc.UnknownShell(f"no shell {shell_id!r}")
        shell.close()
        return {}

    # -- responders: screen and input -------------------------------------------------------------

    @sc.ListMonitors.responder
    def list_monitors(self):
        self._require(sc.VIEW)
        return {"monitors": [
            {"index": m.index, "left": m.left, "top": m.top, "width": m.width, "height": m.height, "primary": m.primary}
            for m in self.platform.screen.monitors()
        ]}

    @sc.RequestFrames.responder
    def request_frames(self, monitor, credit):
        self._require(sc.VIEW)
        if monitor not in {m.index for m in self.platform.screen.monitors()}:
            raise sc.BadRequest(f"no monitor {monitor}")
        if not 0 < credit <= 64:
            raise sc.BadRequest("credit is 1 to 64 frames")
        switching = self._screen is not None and self._screen[0] != monitor
        current = self._screen[1] if self._screen is not None and not switching else 0
        self._last_monitor = monitor
        self._screen = (monitor, min(current + credit, 64))
        if switching and self._screen_running:
            # Let go of the wait for a change on the old monitor.
            self.platform.screen.stop()
        self._activity()
        if not self._screen_running:
            defer.ensureDeferred(self._send_frames())
        return {}

    async def _send_frames(self) -> None:
        self._screen_running = True
        try:
            while self._screen is not None and self._screen[1] > 0 and self.state != ENDED:
                monitor, credit = self._screen
                frame = await self.platform.screen.next_frame(monitor)
                if self._screen is not None and self._screen[0] != monitor:
                    continue  # the operator chose another monitor meanwhile
                if frame is None or self._screen is None or not self.grants.allowed(sc.VIEW) or self.state == ENDED:
                    break
                self._screen = (self._screen[0], self._screen[1] - 1)
                await self._send_frame(frame)
                self._send_cursor(monitor)
        except Exception as e:
            if self.state != ENDED:
                self.log.failure("screen sharing stopped", None)
                self.log.warn("screen sharing stopped: {problem}", problem=str(e))
        finally:
            self._screen_running = False

    async def _send_frame(self, frame: Frame) -> None:
        self._frame_number += 1
        for tile in frame.tiles:
            if len(tile.data) > self.limits.max_chunk:
                raise ValueError(f"a tile of {len(tile.data)} bytes is larger than a chunk")
        groups = tile_groups(frame.tiles, self.limits.max_tiles_per_update) or [[]]
        sent = [
            self.channel.callRemote(
                sc.FrameUpdate, frame=self._frame_number, monitor=frame.monitor, width=frame.width,
                height=frame.height, last=index == len(groups) - 1,
                tiles=[{"x": t.x, "y": t.y, "width": t.width, "height": t.height, "encoding": t.encoding,
                        "data": t.data} for t in group],
            )
            for index, group in enumerate(groups)
        ]
        await defer.gatherResults(sent, consumeErrors=True)

    def _send_cursor(self, monitor: int) -> None:
        cursor = self.platform.screen.cursor(monitor)
        if cursor == self._cursor or self.state == ENDED:
            return
        shape = {"shape": cursor.shape} if self._cursor is None or cursor.shape != self._cursor.shape else {}
        self._cursor = cursor
        self.channel.callRemote(sc.CursorUpdate, x=cursor.x, y=cursor.y, visible=cursor.visible, **shape)

    def _stop_screen(self) -> None:
        if self._screen is not None:
            self._screen = None
            self.platform.screen.stop()
            self._activity()

    @sc.Input.responder
    def input(self, kind, **fields):
        self._require(sc.CONTROL)
        event = InputEvent(kind, **fields)
        problem = event.problem()
        if problem is not None:
            raise sc.BadRequest(problem)
        if event.x is not None:
            event = self._on_screen(event)
        try:
            self.platform.input.apply(event)
        except (ValueError, RuntimeError) as e:
            raise sc.BadRequest(f"this input cannot be applied: {e}") from e
        return {}

    def _on_screen(self, event: InputEvent) -> InputEvent:
        """The event in virtual-screen coordinates: the console sends them relative to the shared monitor."""
        monitors = self.platform.screen.monitors()
        index = self._screen[0] if self._screen is not None else self._last_monitor
        monitor = next((m for m in monitors if m.index == index), monitors[0])
        if not (0 <= event.x < monitor.width and 0 <= event.y < monitor.height):
            raise sc.BadRequest(f"({event.x}, {event.y}) is outside the shared monitor")
        return attrs.evolve(event, x=event.x + monitor.left, y=event.y + monitor.top)

    # -- responders: clipboard ---------------------------------------------------------------------

    @sc.Clipboard.responder
    def clipboard(self, text):
        self._require(sc.CLIPBOARD)
        self.platform.clipboard.set_text(text)
        self.record("clipboard-in")
        return {}

    def send_clipboard(self, text: str):
        """Send the customer's clipboard text to the operator (only when granted)."""
        self._require(sc.CLIPBOARD)
        self.record("clipboard-out")
        return self.channel.callRemote(sc.Clipboard, text=text)


# The tiles of one update travel as one AMP value (at most 65,535 bytes), each
# with its coordinates and key names around its data.
UPDATE_VALUE_BYTES = 64000
TILE_OVERHEAD = 96


def tile_groups(tiles, max_tiles: int) -> list[list]:
    """C{tiles} in order, split so that each group fits one L{sc.FrameUpdate}."""
    groups, group, size = [], [], 0
    for tile in tiles:
        cost = len(tile.data) + TILE_OVERHEAD
        if group and (size + cost > UPDATE_VALUE_BYTES or len(group) >= max_tiles):
            groups.append(group)
            group, size = [], 0
        group.append(tile)
        size += cost
    if group:
        groups.append(group)
    return groups
