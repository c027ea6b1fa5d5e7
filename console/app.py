"""
The operator's console as one program: the login window, then the desk
window (codes and queue), and a session window per customer picked up.
Tk runs in the main thread and the network in the reactor thread; they
meet only through the L{Bridge}.  The desk (L{console.desk.Desk}) reaches
the gateway by the shared transport ladder; the way it got through is
shown in the status bar.
"""

import os
import time
import tkinter as tk
from tkinter import messagebox, ttk

import attrs
from twisted.internet import task, threads

from console import login_window, main_window
from console.desk import Desk, read_out_code
from console.login_window import CAFileProblem, CertificateNotVerified, LoginFrame, LoginRequest
from console.main_window import MainWindow
from console.session_tap import SessionTap
from console.settings import ConsoleSettings, save
from wire import codes, commands, ladder, logs
from wire.recentlog import RecentLog
from wire.tkbridge import Bridge


# Seconds between the idle desk's signs of life on the control connection.
KEEPALIVE = 60.0


def session_window_class():
    """C{console.session_window.SessionWindow}, or C{None} where it is not installed."""
    try:
        from console.session_window import SessionWindow
    except ModuleNotFoundError as e:
        if e.name != "console.session_window":
            raise
        return None
    return SessionWindow


def _hang_up(connection) -> None:
    """Close a gateway connection, if it is open (reactor thread)."""
    if connection is not None and connection.transport is not None:
        connection.transport.loseConnection()


def _events(desk_event):
    """What a desk event means for the code's row: (routing, new state or None for "waiting")."""
    command, arguments = desk_event
    routing = arguments["routing"]
    if command is commands.CustomerWaiting:
        return routing, main_window.CUSTOMER_WAITING
    if command is commands.CustomerLeft:
        return routing, main_window.CUSTOMER_LEFT
    if command is commands.CodeTimedOut:
        return routing, main_window.EXPIRED if arguments.get("reason") == "expired" else main_window.NOT_PICKED_UP
    if command is commands.SessionEnded:
        return routing, main_window.ENDED
    if command is commands.CustomerTaken:
        return routing, main_window.TAKEN
    return routing, None


def default_recording_directory() -> str:
    """Where recordings go unless the operator chose: ~/Videos/Ponte."""
    return os.path.join(os.path.expanduser("~"), "Videos", "Ponte")


class ConsoleApp:
    """
    One run of the console.  C{settings} are the remembered ones (with the
    command line applied); C{settings_path} is where a successful login
    saves them again.
    """

    log = logs.logger(__name__)

    def __init__(self, root: tk.Tk, reactor, settings: ConsoleSettings, settings_path: str,
                 receive_directory: str, proxy=None, ladder_memory=None, clock=time.time,
                 keepalive: float = KEEPALIVE, record_directory: str | None = None):
        self.root = root
        self.reactor = reactor
        self.settings = settings
        self.settings_path = settings_path
        self.proxy = proxy
        self.clock = clock
        self.keepalive = keepalive
        # Every session is recorded here when set; otherwise the operator turns recording on.
        self.record_directory = record_directory
        self.record_required = False  # the organisation's policy, from the login
        self.recent_log = RecentLog.start()
        self._keeping_alive = None  # reactor thread's LoopingCall
        self.ladder_memory = ladder_memory or ladder.LadderMemory()
        self.bridge = Bridge(root, reactor)
        self.ladder: ladder.Ladder | None = None
        self.desk = Desk(reactor, self._connect, receive_directory, events=self._desk_event)
        self.exit_status = 0
        self.identity = None
        self.way = None
        self.login: LoginFrame | None = None
        self.main: MainWindow | None = None
        self.sessions: dict[str, object] = {}  # routing → ConsoleSession (Tk thread's copy)
        self.windows: dict[str, object] = {}  # routing → session window
        self._control = None
        self._leaving = False
        root.title(f"{main_window.TITLE} — log in")
        root.protocol("WM_DELETE_WINDOW", self.close_main_window)
        ttk.Style(root).theme_use("clam")
        self.status = tk.Label(root, text="Not connected.", anchor="w", relief="sunken", bd=1, padx=6,
                               font=("TkDefaultFont", 9))
        self.status.pack(side="bottom", fill="x")

    def start(self) -> None:
        """Start the network thread and show the login window."""
        self.bridge.start()
        self.show_login()

    def show_login(self, message: str = "") -> None:
        if self.main is not None:
            self.main.pack_forget()
        s = self.settings
        self.login = LoginFrame(self.root, s.gateway, s.ca, s.username, self._submit_login, message)
        self.login.pack(fill="both", expand=True)

    def set_title(self, text: str) -> None:
        self.root.title(text)

    # -- logging in ---------------------------------------------------------------------------

    def _submit_login(self, request: LoginRequest) -> None:
        try:
            with open(os.path.expanduser(request.ca), "rb") as f:
                ca = f.read()
            if b"-----BEGIN CERTIFICATE-----" not in ca:
                raise ValueError("it holds no PEM certificate")
        except (OSError, ValueError) as e:
            self.login.show_error(CAFileProblem(f"Cannot use the CA certificate {request.ca}: {e}"))
            return
        s = self.settings
        address = ladder.GatewayAddress(request.gateway, s.raw_port, s.https_port, ca, s.http_port)
        self.ladder = ladder.Ladder(self.reactor, address, self.proxy, memory=self.ladder_memory)
        self._pending = request
        self.bridge.run(self._log_in, request, done=self._logged_in, failed=self._login_failed)

    async def _connect(self, role: str, on_event):
        """
        The desk's way to a new gateway connection (reactor thread): the
        transport ladder's race, which ends with a C{Hello} in C{role}.
        """
        connection, report = await self.ladder.connect(role, on_event)
        if role == commands.ROLE_OPERATOR:
            self.way = report.winner
        return connection

    async def _log_in(self, request: LoginRequest):
        """Reactor thread: connect and log in; the certificate problem gets its fingerprint."""
        before = self.desk.control
        try:
            identity = await self.desk.login(request.username, request.password, request.totp, request.new_password)
        except ladder.NoWayThrough as e:
            refused = login_window.certificate_refused(e.report)
            if refused is None:
                raise
            address = self.ladder.address
            port = address.raw_port if refused.way == ladder.RAW else address.https_port
            try:
                der = await threads.deferToThread(login_window.presented_certificate, address.host, port)
            except Exception as problem:
                raise CertificateNotVerified(e.report, None, str(problem)) from e
            raise CertificateNotVerified(e.report, login_window.fingerprint(der)) from e
        except BaseException:
            # This attempt's connection, if it got one (the login was refused).
            if self.desk.control is not before:
                _hang_up(self.desk.control)
            raise
        control = self.desk.control
        control.lost.addCallback(lambda reason: self.bridge.to_ui(self._control_lost, control, reason))
        self._keep_alive(control)
        return identity, control

    def _keep_alive(self, control) -> None:
        """
        Reactor thread: the gateway drops a control connection that stays
        silent (15 minutes by default), so an idle desk asks for its list
        of codes now and then.
        """
        if self._keeping_alive is not None and self._keeping_alive.running:
            self._keeping_alive.stop()

        def ping():
            if control.transport is None:
                return None
            d = control.callRemote(commands.ListSessions)
            d.addErrback(lambda f: self.log.info("keepalive refused: {problem}", problem=str(f.value)))
            return None

        self._keeping_alive = task.LoopingCall(ping)
        self._keeping_alive.clock = self.reactor
        self._keeping_alive.start(self.keepalive, now=False)
        control.lost.addCallback(lambda _: self._keeping_alive.running and self._keeping_alive.stop())

    def _login_failed(self, error: Exception) -> None:
        self.log.info("login failed: {problem}", problem=login_window.describe(error))
        if self.login is not None:
            self.login.show_error(error)

    def _logged_in(self, result) -> None:
        self.identity, self._control = result
        self.record_required = self.desk.record_sessions
        request = self._pending
        self.settings = attrs.evolve(self.settings, gateway=request.gateway, ca=request.ca, username=request.username)
        try:
            save(self.settings, self.settings_path)
        except OSError as e:
            self.log.warn("cannot save the settings: {problem}", problem=str(e))
        self.log.info("logged in as {who} ({way})", who=self.identity.display_name, way=self.way)
        self.login.destroy()
        self.login = None
        if self.main is None:
            self.main = MainWindow(self.root, self.identity.display_name, self, clock=self.clock,
                                   team=self.identity.group)
        self.main.pack(fill="both", expand=True)
        self.main.set_enabled(True)
        self.bridge.run(self.desk.team_queue, done=self._queue_found,
                        failed=lambda e: self.log.warn("cannot list the team's queue: {problem}", problem=str(e)))
        self.main.update_title()
        way = login_window.WAYS.get(self.way, self.way)
        recorded = " Every session is recorded (your organisation requires it)." if self.record_required else ""
        self.status.configure(
            text=f"Connected to {request.gateway} ({way}) as {self.identity.display_name}, "
                 f"{self.identity.organisation}.{recorded}",
            fg="#1b5e20",
        )

    def _control_lost(self, control, reason) -> None:
        if control is not self._control or self._leaving:
            return
        self._control = None
        self.log.warn("the control connection was lost: {reason}", reason=str(reason))
        self.status.configure(text="Disconnected from the gateway.", fg="#b00020")
        if self.main is not None:
            self.main.set_enabled(False)
        self.show_login("The connection to the gateway was lost. Log in again; sessions in progress go on.")

    def _queue_found(self, waiting: list[dict]) -> None:
        """Customers who were already waiting in the team's queue at login (Tk thread)."""
        for item in waiting:
            self.main.customer_waiting(item["routing"], item["team"], item["created_by"])

    # -- the desk's events (reactor thread) --------------------------------------------------------

    def _desk_event(self, command, arguments) -> None:
        self.bridge.to_ui(self._code_event, command, dict(arguments))

    def _code_event(self, command, arguments) -> None:
        routing, state = _events((command, arguments))
        if self.main is None or state is None:
            return
        if state == main_window.CUSTOMER_WAITING:
            self.main.customer_waiting(routing, arguments.get("team") or "", arguments.get("created_by") or "")
        elif state == main_window.TAKEN:
            self.main.customer_taken(routing, arguments["by"])
        else:
            self.main.set_state(routing, state)
        if state == main_window.ENDED:
            self.sessions.pop(routing, None)

    # -- the desk window's actions (Tk thread) ---------------------------------------------------------

    def new_session(self, team: bool = False) -> None:
        self.bridge.run(self.desk.new_code, team, done=self.main.code_made,
                        failed=lambda e: self.main.new_session_failed(f"No new code: {e}"))

    def cancel(self, routing: str) -> None:
        self.bridge.run(self.desk.cancel, routing, done=lambda _: self.main.cancelled(routing),
                        failed=lambda e: self.main.cancel_failed(f"The code was not cancelled: {e}"))

    def pick_up(self, routing: str, secret: str | None = None) -> None:
        """Pick up the customer on C{routing} (a teammate's code: with the last part the customer read out)."""
        SessionWindow = session_window_class()
        if SessionWindow is None:
            self.main.pick_up_failed(routing, "This console has no session window installed.")
            return
        entry = self.main.codes.get(routing)
        shown = entry["live"].display() if entry else codes.display(read_out_code(routing, secret))
        window = SessionWindow(self.root, self.bridge, f"customer on code {shown}")
        self.windows[routing] = window
        self.main.picked_up(routing)

        def closed(event):
            if event.widget is window:
                self.windows.pop(routing, None)
                self.sessions.pop(routing, None)

        window.bind("<Destroy>", closed, add="+")

        def attached(session):
            self.sessions[routing] = session
            window.attach(session)

        def failed(error):
            self.windows.pop(routing, None)
            try:
                window.destroy()
            except tk.TclError:
                pass
            if isinstance(error, KeyError):
                message = f"The customer on {shown} is no longer waiting."
                self.main.set_state(routing, main_window.CUSTOMER_LEFT)
            elif isinstance(error, commands.CodeBusy):
                message = f"The customer on {shown} was not picked up: {error}."
                self.main.set_state(routing, main_window.TAKEN)
            else:
                message = f"Could not pick up the customer on {shown}: {error}"
            self.main.pick_up_failed(routing, message)

        def ended(session):
            # Reactor thread.
            self.bridge.to_ui(self._code_event, commands.SessionEnded, {"routing": routing})
            self.bridge.to_ui(self._upload_transcript, routing, session, window)

        tap = SessionTap(window.ui, self.reactor, ended)
        window.on_record = lambda on: self._record(tap, on, routing, window)
        if self.record_required:
            window.recording_required()
        if self.record_directory or self.record_required:
            window.recording_started()
            self.bridge.to_network(self._start_recording, tap, routing, window)

        def attached_and_tapped(session):
            tap.session = session
            attached(session)

        self.bridge.run(self.desk.pick_up, routing, tap, secret, done=attached_and_tapped, failed=failed)

    # -- recording and transcripts --------------------------------------------------------------------

    def _record(self, tap, on: bool, routing: str, window) -> None:
        """The operator turned recording on or off (Tk thread)."""
        if on:
            self.bridge.to_network(self._start_recording, tap, routing, window)
        else:
            self.bridge.to_network(tap.stop_recording)

    def _start_recording(self, tap, routing: str, window) -> None:
        directory = self.record_directory or default_recording_directory()
        try:
            path = tap.start_recording(directory, codes.fingerprint(routing))
        except OSError as e:
            self.bridge.to_ui(window.recording_failed, str(e))
        else:
            self.bridge.to_ui(window.recording_started, path)

    def _upload_transcript(self, routing: str, session, window) -> None:
        """The session ended: upload its chat, events and the operator's notes (Tk thread)."""
        if session is None:
            return
        notes = window.notes() if window.winfo_exists() else ""
        self.bridge.run(
            self.desk.upload_transcript, routing, session.chat, session.events, notes,
            done=lambda size: self.log.info("transcript uploaded ({size} bytes)", size=size),
            failed=lambda e: self.main and self.main.flash(f"The transcript was not uploaded: {e}", highlight=False),
        )

    def replay(self) -> None:
        """Open a recording in the replay window (play, pause, seek, speed, export)."""
        from tkinter import filedialog

        from console.replay import ReplayWindow

        path = filedialog.askopenfilename(
            parent=self.root, title="Replay a recording", initialdir=self.record_directory or default_recording_directory(),
            filetypes=[("Ponte recordings", "*.ponterec"), ("All files", "*")],
        )
        if path:
            try:
                ReplayWindow(self.root, path)
            except Exception as e:
                self.main.flash(f"This recording cannot be replayed: {e}", highlight=False)

    def report_problem(self) -> None:
        """Send the console's recent log to the gateway for the administrators (Tk thread)."""
        text = "\n".join(self.recent_log.lines())
        self.bridge.run(
            self.desk.report_problem, text,
            done=lambda number: self.main.flash(f"Thank you: problem report {number} was sent.", highlight=False),
            failed=lambda e: self.main.flash(f"The report was not sent: {e}", highlight=False),
        )

    # -- leaving ------------------------------------------------------------------------------------

    def close_main_window(self) -> None:
        live = len(self.sessions)
        if live and not messagebox.askokcancel(
            "Quit the console?", f"{live} session{'s' if live != 1 else ''} will end. Quit?", parent=self.root
        ):
            return
        self.terminate()

    def terminate(self) -> None:
        """End every session (telling the customers), drop the gateway and leave."""
        self._leaving = True
        sessions = list(self.sessions.values())
        for session in sessions:
            self.bridge.to_network(session.end, "the operator closed the console")
        control = self._control
        if control is not None:
            self.bridge.to_network(_hang_up, control)
        self.root.after(400 if sessions else 50, self.quit)

    def quit(self, status: int = 0) -> None:
        """Leave the Tk main loop; the program then stops the network and exits."""
        self.exit_status = status
        self.root.quit()
