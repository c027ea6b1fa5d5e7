"""
The customer's journey, on top of the session core: the code, who is
waiting and the terms, connecting, the panel for the whole session, the
summary, then exit.  Tk runs in the main thread and the network in the
reactor thread; they meet only through the L{Bridge}.

There is exactly one way to a session: the customer accepts in the terms
window, and the panel is on screen before the agent joins.  No option,
setting or code path runs a session without it.
"""

import tkinter as tk
from tkinter import filedialog, ttk

import attrs
from twisted.internet import defer
from zope.interface import implementer

from agent import wording
from agent.code_window import TITLE, CodeFrame
from agent.interfaces import IAgentUI, IClipboard
from agent.panel import Panel
from agent.session import AgentSession
from agent.session_log import SessionLog
from agent.summary import SummaryFrame
from agent.terms_window import TermsFrame, WhoIsWaiting
from wire import codes, commands, ladder, logs
from wire import session_commands as sc
from wire.tkbridge import Bridge


@attrs.frozen
class AgentSettings:
    """What the agent knows before the customer types anything (from its bundle)."""

    gateway: ladder.GatewayAddress
    operator_ca_pem: bytes = attrs.field(repr=False)
    receive_directory: str
    proxy: object = None
    routing_length: int = 4
    secret_length: int = 3


class AgentApp:
    """
    One run of the agent.  C{make_platform(clipboard)} builds the
    L{agent.interfaces.IPlatform} once the customer accepted.
    """

    log = logs.logger(__name__)

    def __init__(self, root: tk.Tk, reactor, settings: AgentSettings, make_platform, ladder_memory=None):
        self.root = root
        self.reactor = reactor
        self.settings = settings
        self.make_platform = make_platform
        self.bridge = Bridge(root, reactor)
        self.ladder = ladder.Ladder(reactor, settings.gateway, settings.proxy, memory=ladder_memory)
        self.frame = None
        self.panel: Panel | None = None
        self.session: AgentSession | None = None
        self.exit_status = 0
        self._connection = None
        self._code = None
        self._way = None
        self._who: WhoIsWaiting | None = None
        root.title(TITLE)
        root.protocol("WM_DELETE_WINDOW", self._close_main_window)
        ttk.Style(root).theme_use("clam")

    def start(self) -> None:
        """Start the network thread and show the code window."""
        self.bridge.start()
        self._show(CodeFrame, self.settings.routing_length, self.settings.secret_length, self._submit_code)

    def _show(self, make, *args) -> None:
        """Replace the main window's content with C{make(root, *args)}."""
        if self.frame is not None:
            self.frame.destroy()
        # Before the new frame binds its own keys.
        for key in ("<Alt-a>", "<Alt-d>", "<Escape>", "<Alt-s>", "<Alt-c>", *"12345"):
            self.root.unbind(key)
        self.frame = make(self.root, *args)
        self.frame.pack(fill="both", expand=True)

    def quit(self, status: int = 0) -> None:
        """Leave the Tk main loop; the program then stops the network and exits."""
        self.exit_status = status
        self.root.quit()

    def terminate(self) -> None:
        """Asked to stop (SIGTERM): end the session, telling the operator, and exit."""
        session = self.session
        if session is not None:
            self.bridge.to_network(session.close)
            self.root.after(300, self.quit)
        else:
            self._drop_connection()
            self.quit()

    def _close_main_window(self) -> None:
        if self.session is None:
            self._drop_connection()
            self.quit()

    # -- code and lookup (Tk thread, then reactor thread) ------------------------------

    def _submit_code(self, code: str) -> None:
        self.bridge.run(self._look_up, code, done=self._show_terms, failed=self._lookup_failed)

    async def _look_up(self, code: str):
        if self._connection is None or self._connection.transport is None:
            self._connection, report = await self.ladder.connect(commands.ROLE_AGENT)
            self._way = report.winner
        routing = code[: self.settings.routing_length]
        answer = await self._connection.callRemote(commands.Lookup, routing=routing)
        self._code = code
        return WhoIsWaiting(
            answer["operator_name"], answer["organisation"], answer["terms_text"],
            answer["terms_version"], answer["privacy_url"],
        )

    def _lookup_failed(self, error: Exception) -> None:
        retry = commands.RateLimited.retry_after(str(error)) if isinstance(error, commands.RateLimited) else None
        self.frame.show_error(wording.lookup_error(error), retry)

    def _show_terms(self, who: WhoIsWaiting) -> None:
        self._who = who
        self.root.title(f"Ponte — {who.operator_name} is waiting")
        self._show(TermsFrame, who, self._accept, self._decline)

    def _decline(self) -> None:
        self._drop_connection()
        self.quit()

    def _drop_connection(self) -> None:
        connection = self._connection
        if connection is not None:
            self.bridge.to_network(lambda: connection.transport and connection.transport.loseConnection())

    # -- the session -----------------------------------------------------------------------

    def _accept(self) -> None:
        who = self._who
        # The panel exists before the session does, and for as long as it does.
        self.panel = Panel(self.root, who.operator_name, who.organisation, _PanelActions(self))
        self.panel.bind("<Destroy>", self._panel_destroyed)
        # An operator who did not make the code (a team's) asks the customer to read it out.
        self.panel.badge.configure(text=f"Connected {wording.WAYS.get(self._way, '')}; waiting for {who.operator_name}…\n"
                                        f"Your code: {codes.display(self._code)}")
        self.root.withdraw()
        self.bridge.run(self._join, failed=self._join_failed)

    async def _join(self) -> None:
        ui = TkAgentUI(self)
        platform = self.make_platform(TkClipboard(self))
        self.session = AgentSession(self.reactor, ui, platform, self._code, self.settings.operator_ca_pem)
        ui.session = self.session
        try:
            await self.session.join(self._connection, self._code[: self.settings.routing_length])
        except Exception:
            # A refused or dropped join: the session never started.
            self.session = None
            raise

    def _join_failed(self, error: Exception) -> None:
        self._connection = None
        self._close_panel()
        self.root.title(TITLE)
        self.root.deiconify()
        self._show(CodeFrame, self.settings.routing_length, self.settings.secret_length, self._submit_code)
        self.frame.show_error(wording.lookup_error(error))

    def _panel_destroyed(self, event) -> None:
        if event.widget is self.panel:
            self.panel = None
            self.end("they closed the panel")

    def _close_panel(self) -> None:
        panel, self.panel = self.panel, None
        if panel is not None:
            panel.destroy()

    def end(self, reason: str = "") -> None:
        """End the session (the End button; closing the panel says so in C{reason})."""
        session = self.session
        if session is not None:
            self.bridge.to_network(session.end, reason)
        else:
            self._drop_connection()
            self.quit()

    def session_ended(self, log: SessionLog) -> None:
        """Tk thread: the session is over; show the summary."""
        self._close_panel()
        self.root.title("Ponte — session ended")
        self.root.deiconify()
        self.root.attributes("-topmost", True)
        self._show(SummaryFrame, log, self._summary_closed)

    def _summary_closed(self, stars, comment) -> None:
        session = self.session
        self.bridge.run(session.close_with_rating, stars, comment, done=lambda _: self.quit(), failed=lambda _: self.quit())

    def show_alarm(self, message: str) -> None:
        """The confirmation or the certificate failed: say so, loudly."""
        self._close_panel()
        self.root.title("Ponte — stopped for your safety")
        self.root.deiconify()
        self._show(_AlarmFrame, message, lambda: self.quit(1))

    def pick_file(self, prompt: str, answer) -> None:
        """Let the customer choose a file for the operator."""
        operator = self._who.operator_name if self._who else "The operator"
        path = filedialog.askopenfilename(parent=self.panel or self.root, title=f"{operator} asks for a file: {prompt}")
        answer(path or None)


class _AlarmFrame(ttk.Frame):
    """The loud stop: what went wrong, and Close."""

    def __init__(self, parent, message: str, on_close):
        super().__init__(parent, padding=20)
        tk.Label(self, text="⚠ Stopped for your safety", fg="#c62828", font=("TkDefaultFont", 14, "bold")).pack(anchor="w")
        ttk.Label(self, text=message, wraplength=420, justify="left").pack(anchor="w", pady=8)
        close = ttk.Button(self, text="Close", underline=0, command=on_close)
        close.pack(anchor="e")
        self.winfo_toplevel().bind("<Alt-c>", lambda event: on_close())


class _PanelActions:
    """What the panel's buttons do (Tk thread → reactor thread)."""

    def __init__(self, app: AgentApp):
        self.app = app

    def _core(self, name, *args):
        session = self.app.session
        if session is not None:
            self.app.bridge.to_network(getattr(session, name), *args)

    def revoke(self, scope):
        self._core("revoke", scope)

    def revoke_all(self):
        self._core("revoke_all")

    def end(self):
        self.app.end()

    def close(self):
        self.app.end("they closed the panel")

    def chat(self, text):
        if self.app.session is not None:
            self.app.bridge.run(self.app.session.send_chat, text, failed=lambda e: None)
            self.app.panel.show_chat("You", text, self.app.reactor.seconds())

    def cancel_transfer(self, transfer_id):
        self._core("cancel_transfer", transfer_id)

    def send_clipboard(self):
        try:
            text = self.app.root.clipboard_get()
        except tk.TclError:
            return
        self._core("send_clipboard", text)


@implementer(IAgentUI)
class TkAgentUI:
    """The session core's view of the panel: called on the reactor thread, drawn on the Tk thread."""

    def __init__(self, app: AgentApp):
        self.app = app
        self.to_ui = app.bridge.to_ui
        self.session = None
        self.operator = app._who.operator_name if app._who else ""
        self.organisation = app._who.organisation if app._who else ""
        self.started_at = app.reactor.seconds()
        self.transfers = {}
        self.alarmed = False

    def _panel(self, method, *args):
        def call():
            if self.app.panel is not None:
                getattr(self.app.panel, method)(*args)

        self.to_ui(call)

    def operator_identified(self, identity):
        # The certificate, not the gateway's lookup, says who this is.
        self.operator, self.organisation = identity.display_name, identity.organisation
        self.started_at = self.app.reactor.seconds()

        def show():
            panel = self.app.panel
            if panel is not None:
                panel.title(f"Ponte — {identity.display_name} is connected")
                panel.operator = identity.display_name
                panel.badge.configure(text="Checking the code…", fg="#555555")

        self.to_ui(show)

    def verified(self):
        self._panel("verified")

    def alarm(self, message):
        self.alarmed = True
        self.to_ui(self.app.show_alarm, message)

    def ask_consent(self, scopes, everything, duration):
        d = defer.Deferred()
        screen = self.session.platform.screen
        windows = []
        if sc.VIEW in scopes:
            try:
                windows = [(i, t) for i, t in screen.windows() if t and not t.startswith("Ponte")]
            except Exception as e:
                self.app.log.info("cannot list windows to share: {problem}", problem=str(e))

        def decided(allowed, window):
            if sc.VIEW in allowed:
                screen.share_window(window)
            d.callback(allowed)

        self._panel("ask", scopes, everything, duration,
                    lambda allowed, window: self.app.bridge.to_network(decided, allowed, window), windows)
        return d

    def grants_changed(self, grants, reason):
        self._panel("show_grants", dict(grants))

    def activity_changed(self, activity):
        self._panel("show_activity", set(activity))

    def chat_received(self, message):
        self._panel("show_chat", self.operator, message.text, message.sent_at)

    def transfer_changed(self, transfer):
        self.transfers[transfer.transfer_id] = attrs.evolve(transfer)
        self._panel("show_transfer", attrs.evolve(transfer))

    def pick_file(self, prompt):
        d = defer.Deferred()
        self.to_ui(self.app.pick_file, prompt, lambda path: self.app.bridge.to_network(d.callback, path))
        return d

    def ended(self, reason):
        if self.session is None or self.alarmed:
            return
        log = SessionLog.of(
            self.session, self.operator, self.organisation, self.started_at, self.app.reactor.seconds(),
            [t for t in self.transfers.values() if t.outcome is not None],
        )
        self.to_ui(self.app.session_ended, log)


@implementer(IClipboard)
class TkClipboard:
    """The customer's clipboard, through Tk (on the Tk thread)."""

    def __init__(self, app: AgentApp):
        self.app = app

    def set_text(self, text):
        def put():
            self.app.root.clipboard_clear()
            self.app.root.clipboard_append(text)

        self.app.bridge.to_ui(put)
