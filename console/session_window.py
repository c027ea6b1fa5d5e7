"""
The operator's window for one customer: their screen (view, or control
once they allow it), permissions and their live state, chat, files, system
information, a command prompt, notes, and End session.  Several can be
open at once.

The window is drawn on the Tk thread only.  Its L{TkConsoleUI} is what the
session core calls on the reactor thread; it hands everything over through
the L{wire.tkbridge.Bridge}, except frames, which go straight to the
window's decoding thread.  Every network call goes through the bridge too,
so neither side ever waits for the other.

Keyboard: Alt+S, P, C, F, Y, T, N select the tabs; Alt+E ends the session;
Alt+R turns remote control on and off; Alt+Z switches between fit and 1:1;
Alt+K (or F8, even while controlling) opens the menu of key combinations;
Alt+A asks for everything; Alt+U sends a file; Alt+G asks for one; Alt+B
sends the console's clipboard text; F5 refreshes the system information.  While controlling, every other key goes
to the customer.
"""

import threading
import time
import tkinter as tk
from tkinter import filedialog, ttk

import attrs
from zope.interface import implementer

from console import keys
from console.interfaces import IConsoleUI
from console.screen_canvas import ScreenCanvas
from console.sysinfo_view import SystemInfoView, percent, size
from console.terminal_view import TerminalView
from wire import logs
from wire import session_commands as sc
from wire.screen import InputEvent
from wire.transfers import TransferCancelled

RED = "#c62828"
GREEN = "#2e7d32"
BLUE = "#1565c0"
GREY = "#616161"

# What each scope lets the operator do, in the operator's words.
SCOPE_NAMES = {
    sc.VIEW: "See the screen",
    sc.CONTROL: "Control mouse and keyboard",
    sc.SEND_FILE: "Send files to the customer",
    sc.RECEIVE_FILE: "Receive files from the customer",
    sc.SYSTEM_INFO: "Read system information",
    sc.SHELL: "Use a command prompt",
    sc.CLIPBOARD: "Send clipboard text",
}
# Time limits offered when asking: label → seconds (0: the whole session).
LIMITS = {"For the whole session": 0.0, "For 15 minutes": 900.0, "For 1 hour": 3600.0, "For 4 hours": 14400.0}
# Tab names, each selected with Alt and its underlined letter.
TABS = (("Screen", 0), ("Permissions", 0), ("Chat", 0), ("Files", 0), ("System", 1), ("Terminal", 0), ("Notes", 0))
CONNECTING = "Connecting…"
CHECKING = "Checking the code…"
VERIFIED = "✔ Verified: the code matches"


def describe_error(error: Exception) -> str:
    """A failed network call for the status line."""
    if isinstance(error, sc.NotGranted):
        return "Not allowed by the customer: ask on the Permissions tab."
    text = str(error) or type(error).__name__
    return text[0].upper() + text[1:] if text else text


def stars(count: int) -> str:
    """C{★★★★☆} for 4."""
    return "★" * count + "☆" * (5 - count)


class SessionWindow(tk.Toplevel):
    """
    One customer's session.  C{ui} is the L{IConsoleUI} to give the session
    core (L{console.desk.Desk.pick_up}); once the pick-up is done, call
    L{attach} with the session on the Tk thread.  C{on_close(window)} is
    called when the operator closes the window (the session is closed
    first if it still runs).
    """

    log = logs.logger(__name__)

    def __init__(self, root, bridge, title: str, on_close=None):
        super().__init__(root)
        self.bridge = bridge
        self.customer = title
        self.on_close = on_close
        self.session = None
        self.is_verified = False
        self.is_ended = False
        self.is_alarmed = False
        self.grants: dict[str, float | None] = {}
        self.watching: int | None = None
        self.monitor_list = []
        self.shell_id: str | None = None
        self.rating: tuple[int, str] | None = None
        self.title(f"Ponte — {title}")
        self.geometry("1100x760")
        self.minsize(640, 420)
        self.protocol("WM_DELETE_WINDOW", self.close)

        self._build_header()
        # The status line is packed before the tabs: when the window is short, the tabs shrink, not it.
        self.status = ttk.Label(self, text="", anchor="w", padding=(8, 2))
        self.status.pack(fill="x", side="bottom")
        self.tabs = ttk.Notebook(self)
        self.tabs.pack(fill="both", expand=True, padx=6, pady=(0, 4))
        self._build_screen_tab()
        self._build_permissions_tab()
        self._build_chat_tab()
        self._build_files_tab()
        self.system = SystemInfoView(self.tabs, self.refresh_system_info)
        self.terminal = TerminalView(self.tabs, self._open_shell, self._shell_input, self._resize_shell,
                                     self._close_shell)
        self._build_notes_tab()
        pages = (self.screen_tab, self.permissions_tab, self.chat_tab, self.files_tab, self.system,
                 self.terminal, self.notes_tab)
        for (name, underline), page in zip(TABS, pages):
            self.tabs.add(page, text=name, underline=underline, padding=6)
        self.tabs.enable_traversal()  # Ctrl+Tab, Ctrl+Shift+Tab
        self.tabs.bind("<<NotebookTabChanged>>", lambda event: self._focus_tab())
        for (name, underline), page in zip(TABS, pages):
            # Alt+letter: the tab and its first control, even when it is already shown.
            self.bind(f"<Alt-{name[underline].lower()}>", lambda event, page=page: self.show_tab(page) or "break")

        for key, action in (("<Alt-e>", self.end), ("<Alt-r>", self.toggle_control), ("<Alt-z>", self.toggle_fit),
                            ("<Alt-k>", self.show_keys_menu), ("<F8>", self.show_keys_menu),
                            ("<Alt-a>", self.ask_everything), ("<Alt-u>", self.send_file),
                            ("<Alt-g>", self.ask_for_file), ("<F5>", self.refresh_system_info),
                            ("<Alt-b>", self.send_clipboard), ("<Alt-d>", self.toggle_recording)):
            self.bind(key, lambda event, action=action: action() and None)

        self.on_record = None  # set by the console: on_record(on)
        self.recording: str | None = None  # the file, while recording
        self.recording_is_required = False
        self.ui = TkConsoleUI(self)
        self.decoder = self.screen.start_decoder(lambda update: bridge.to_ui(self._show_update, update))
        self._show_mode()

    # -- recording -----------------------------------------------------------------------------

    def toggle_recording(self) -> None:
        """Start or stop recording this session (the console writes the file; required: no stopping)."""
        if self.recording_is_required and self.recording is not None:
            return
        if self.on_record is not None:
            self.on_record(self.recording is None)
            if self.recording is not None:
                self.recording = None
                self.record_button.configure(text="● Record")
                self.status.configure(text="Recording stopped.")

    def recording_required(self) -> None:
        """The organisation requires this session to be recorded: the button cannot stop it."""
        self.recording_is_required = True

    def recording_started(self, path: str = "") -> None:
        """The recording file is being written."""
        self.recording = path or "…"
        if self.recording_is_required:
            self.record_button.configure(text="● Recording (required)", state="disabled")
        else:
            self.record_button.configure(text="■ Stop recording")
        self.status.configure(text=f"Recording to {path}" if path else "Recording.")

    def recording_failed(self, message: str) -> None:
        """The recording could not start (the button tries again)."""
        self.recording = None
        self.record_button.configure(text="● Record", state="normal")
        required = " Your organisation requires sessions to be recorded: press Record to try again." \
            if self.recording_is_required else ""
        self.status.configure(text=f"Not recording: {message}.{required}")

    # -- building --------------------------------------------------------------------------------

    def _build_header(self) -> None:
        header = ttk.Frame(self, padding=(8, 6))
        header.pack(fill="x")
        ttk.Label(header, text=self.customer, font=("TkDefaultFont", 13, "bold")).pack(side="left")
        self.badge = tk.Label(header, text=CONNECTING, fg=GREY, font=("TkDefaultFont", 11, "bold"))
        self.badge.pack(side="left", padx=12)
        self.end_button = tk.Button(
            header, text="End session", underline=0, command=self.end, bg=RED, fg="white",
            activebackground="#8e0000", activeforeground="white", font=("TkDefaultFont", 11, "bold"),
        )
        self.end_button.pack(side="right")
        self.record_button = ttk.Button(header, text="● Record", underline=5, command=self.toggle_recording)
        self.record_button.pack(side="right", padx=(8, 0))
        self.mode = tk.Label(header, text="", font=("TkDefaultFont", 12, "bold"), padx=10, pady=3)
        self.mode.pack(side="right", padx=12)
        self.alarm_banner = tk.Label(self, text="", bg=RED, fg="white", font=("TkDefaultFont", 14, "bold"),
                                     wraplength=1000, justify="left", padx=12, pady=10)
        self.rating_banner = tk.Label(self, text="", bg="#fff8e1", fg="#5d4037", font=("TkDefaultFont", 12),
                                      wraplength=1000, justify="left", padx=12, pady=6)
        self.ended_banner = tk.Label(self, text="", bg="#eceff1", fg="#263238", font=("TkDefaultFont", 11, "bold"),
                                     padx=12, pady=4, anchor="w")
        self.bind("<Configure>", self._wrap_banners, add="+")

    def _wrap_banners(self, event) -> None:
        if event.widget is self:
            for banner in (self.alarm_banner, self.rating_banner):
                banner.configure(wraplength=max(300, event.width - 40))

    def _build_screen_tab(self) -> None:
        self.screen_tab = ttk.Frame(self.tabs)
        bar = ttk.Frame(self.screen_tab)
        bar.pack(fill="x", pady=(0, 4))
        self.controlling = tk.BooleanVar(value=False)
        self.control_button = ttk.Checkbutton(bar, text="Remote control (Alt+R)", variable=self.controlling,
                                              command=self._control_clicked, state="disabled")
        self.control_button.pack(side="left")
        self.fitting = tk.BooleanVar(value=True)
        ttk.Checkbutton(bar, text="Scale to fit (Alt+Z)", variable=self.fitting,
                        command=lambda: self.screen.set_fitting(self.fitting.get())).pack(side="left", padx=8)
        ttk.Label(bar, text="Monitor:").pack(side="left", padx=(8, 2))
        self.monitor_choice = tk.StringVar()
        self.monitor_box = ttk.Combobox(bar, textvariable=self.monitor_choice, state="disabled", width=26)
        self.monitor_box.pack(side="left")
        self.monitor_box.bind("<<ComboboxSelected>>", lambda event: self._monitor_chosen())
        self.keys_button = ttk.Menubutton(bar, text="Send keys (F8)")
        self.keys_menu = tk.Menu(self.keys_button, tearoff=False)
        for index, combination in enumerate(keys.COMBINATIONS):
            self.keys_menu.add_command(label=combination.label, underline=0 if index < 9 else -1,
                                       command=lambda c=combination: self.send_combination(c))
        self.keys_menu.add_separator()
        self.keys_menu.add_command(label="Stop controlling", command=lambda: self.set_control(False))
        self.keys_button.configure(menu=self.keys_menu)
        self.keys_button.pack(side="left", padx=8)
        self.screen = ScreenCanvas(self.screen_tab, self._send_input, self._frames_shown, self.show_keys_menu)
        self.screen.pack(fill="both", expand=True)

    def _build_permissions_tab(self) -> None:
        self.permissions_tab = tab = ttk.Frame(self.tabs, padding=8)
        ttk.Label(tab, text="What the customer allows you now. Ask for what you need; they decide on their side.",
                  wraplength=700).grid(row=0, column=0, columnspan=3, sticky="w", pady=(0, 8))
        self.grant_labels: dict[str, tk.Label] = {}
        self.ask_buttons: dict[str, ttk.Button] = {}
        for row, scope in enumerate(sc.SCOPES, start=1):
            ttk.Label(tab, text=SCOPE_NAMES[scope]).grid(row=row, column=0, sticky="w", padx=(0, 16), pady=2)
            label = tk.Label(tab, text="Not allowed", fg=GREY, width=22, anchor="w", font=("TkDefaultFont", 10, "bold"))
            label.grid(row=row, column=1, sticky="w")
            button = ttk.Button(tab, text="Ask", command=lambda s=scope: self.ask([s]), state="disabled")
            button.grid(row=row, column=2, sticky="w", padx=4)
            button.bind("<Return>", lambda event, s=scope: self.ask([s]))
            self.grant_labels[scope], self.ask_buttons[scope] = label, button
        line = ttk.Frame(tab)
        line.grid(row=len(sc.SCOPES) + 1, column=0, columnspan=3, sticky="w", pady=(12, 0))
        self.ask_all_button = ttk.Button(line, text="Ask for everything", underline=0, command=self.ask_everything,
                                         state="disabled")
        self.ask_all_button.pack(side="left")
        self.ask_all_button.bind("<Return>", lambda event: self.ask_everything())
        self.limit = tk.StringVar(value=next(iter(LIMITS)))
        ttk.Combobox(line, textvariable=self.limit, values=list(LIMITS), state="readonly", width=22).pack(
            side="left", padx=8)
        self.answer_label = ttk.Label(tab, text="", wraplength=700)
        self.answer_label.grid(row=len(sc.SCOPES) + 2, column=0, columnspan=3, sticky="w", pady=(8, 0))

    def _build_chat_tab(self) -> None:
        self.chat_tab = ttk.Frame(self.tabs)
        self.chat = tk.Text(self.chat_tab, wrap="word", state="disabled", height=10, padx=8, pady=6, takefocus=0)
        self.chat.pack(fill="both", expand=True)
        self.chat.tag_configure("time", foreground="#888888")
        self.chat.tag_configure("me", foreground="#1a237e", font=("TkDefaultFont", 10, "bold"))
        self.chat.tag_configure("them", foreground=GREEN, font=("TkDefaultFont", 10, "bold"))
        self.chat.tag_configure("note", foreground=GREY, font=("TkDefaultFont", 9, "italic"))
        line = ttk.Frame(self.chat_tab)
        line.pack(fill="x", pady=(4, 0))
        self.chat_entry = ttk.Entry(line)
        self.chat_entry.pack(side="left", fill="x", expand=True)
        self.chat_entry.bind("<Return>", lambda event: self.send_chat())
        ttk.Button(line, text="Send", command=self.send_chat).pack(side="left", padx=(4, 0))
        ttk.Button(line, text="Send my clipboard (Alt+B)", command=self.send_clipboard).pack(side="left", padx=(8, 0))

    def _build_files_tab(self) -> None:
        self.files_tab = tab = ttk.Frame(self.tabs)
        line = ttk.Frame(tab)
        line.pack(fill="x", pady=(0, 6))
        self.send_file_button = ttk.Button(line, text="Send a file… (Alt+U)", command=self.send_file)
        self.send_file_button.pack(side="left")
        self.send_file_button.bind("<Return>", lambda event: self.send_file())
        ttk.Label(line, text="Ask for:").pack(side="left", padx=(16, 2))
        self.file_prompt = tk.StringVar(value="the file we talked about")
        prompt = ttk.Entry(line, textvariable=self.file_prompt, width=30)
        prompt.pack(side="left")
        prompt.bind("<Return>", lambda event: self.ask_for_file())
        ttk.Button(line, text="Ask the customer for a file (Alt+G)", command=self.ask_for_file).pack(side="left", padx=4)
        self.transfer_list = ttk.Frame(tab)
        self.transfer_list.pack(fill="both", expand=True)
        self.nothing_transferred = ttk.Label(self.transfer_list, text="No files yet.", foreground=GREY)
        self.nothing_transferred.pack(anchor="w")
        self.transfer_rows: dict[str, dict] = {}

    def _build_notes_tab(self) -> None:
        self.notes_tab = ttk.Frame(self.tabs)
        ttk.Label(self.notes_tab, text="Session notes: what the problem was and what you did "
                                       "(kept with the session record).").pack(anchor="w", pady=(0, 4))
        self.notes_text = tk.Text(self.notes_tab, wrap="word", undo=True, padx=8, pady=6)
        self.notes_text.pack(fill="both", expand=True)
        # Tab inserts a tab in a Text; Ctrl+Tab still moves between tabs of the window.
        self.notes_text.bind("<Control-Tab>", lambda event: self.tabs.event_generate("<Control-Tab>") or "break")

    # -- the session ------------------------------------------------------------------------------

    def attach(self, session) -> None:
        """Tk thread: the pick-up is done; C{session} is the L{console.session.ConsoleSession}."""
        self.session = session
        if not self.is_verified and not self.is_ended:
            self.badge.configure(text=CHECKING, fg=GREY)

    def verified(self) -> None:
        """The customer's agent confirmed the code."""
        self.is_verified = True
        self.badge.configure(text=VERIFIED, fg=GREEN)
        for button in (*self.ask_buttons.values(), self.ask_all_button):
            button.configure(state="normal")
        self.set_status("Verified. Ask the customer for what you need on the Permissions tab (Alt+P, then Alt+A).")

    def alarm(self, message: str) -> None:
        """The confirmation failed: say so, loudly."""
        self.is_alarmed = True
        self.badge.configure(text="⚠ NOT VERIFIED", fg=RED)
        self.alarm_banner.configure(text=f"⚠ Stopped: {message}")
        self.alarm_banner.pack(fill="x", after=self.badge.master)
        self.title(f"⚠ Ponte — {self.customer}: stopped")
        self.bell()
        self.deiconify()
        self.lift()

    def ended(self, reason: str) -> None:
        """The session is over."""
        self.is_ended = True
        self.grants = {}
        self.set_control(False)
        self.watching = None
        self.screen.clear("The session has ended.")
        self.terminal.stop("The session has ended.")
        self.end_button.configure(state="disabled")
        for button in (*self.ask_buttons.values(), self.ask_all_button):
            button.configure(state="disabled")
        self._show_grants()
        self._show_mode()
        if self.is_alarmed:
            self.set_status("The session was stopped before it started.")
            return
        self.ended_banner.configure(text=f"Session ended: {reason}")
        self.ended_banner.pack(fill="x", after=self.badge.master)
        self.set_status("The session has ended. Write your notes (Alt+N); the customer may still rate the session.")

    def rated(self, count: int, comment: str) -> None:
        """The customer's rating arrived."""
        self.rating = (count, comment)
        text = f"Customer's rating: {stars(count)} ({count} of 5)"
        if comment:
            text += f" — “{comment}”"
        self.rating_banner.configure(text=text)
        self.rating_banner.pack(fill="x", after=self.ended_banner if self.is_ended else self.badge.master)

    def end(self) -> None:
        """End the session (Alt+E)."""
        if self.session is not None and not self.is_ended:
            self.set_status("Ending the session…")
            self.bridge.to_network(self.session.end, "")

    def close(self) -> None:
        """The operator closes the window: close the session if it still runs."""
        if self.session is not None:
            self.bridge.to_network(self.session.close)
        if self.on_close is not None:
            self.on_close(self)
        self.destroy()

    def notes(self) -> str:
        """The operator's session notes."""
        return self.notes_text.get("1.0", "end-1c")

    def set_status(self, text: str) -> None:
        """A line in the status bar."""
        self.status.configure(text=text)

    def _failed(self, what: str):
        return lambda error: self.set_status(f"{what}: {describe_error(error)}")

    def show_tab(self, page) -> None:
        """Select a tab and put the keyboard in it."""
        self.tabs.select(page)
        self._focus_tab()

    def _focus_tab(self) -> None:
        page = self.tabs.nametowidget(self.tabs.select())
        if page is self.chat_tab:
            self.tabs.tab(self.chat_tab, text="Chat")
            self.chat_entry.focus_set()
        elif page is self.notes_tab:
            self.notes_text.focus_set()
        elif page is self.terminal:
            (self.terminal.text if self.terminal.running else self.terminal.open_button).focus_set()
        elif page is self.permissions_tab:
            self.ask_all_button.focus_set()
        elif page is self.files_tab:
            self.send_file_button.focus_set()
        elif page is self.system:
            self.system.refresh_button.focus_set()
            if self.system.info is None and sc.SYSTEM_INFO in self.grants:
                self.refresh_system_info()
        elif page is self.screen_tab:
            self.screen.canvas.focus_set()

    # -- permissions ------------------------------------------------------------------------------

    def ask(self, scopes, everything: bool = False) -> None:
        """Ask the customer for C{scopes}."""
        if self.session is None or not self.is_verified or self.is_ended:
            return
        duration = LIMITS.get(self.limit.get(), 0.0)
        names = ", ".join(SCOPE_NAMES[s].lower() for s in scopes)
        self.answer_label.configure(text=f"Waiting for the customer to answer ({names})…")
        self.bridge.run(self.session.request_consent, list(scopes), everything, duration,
                        done=self._answered, failed=self._failed("The request failed"))

    def ask_everything(self) -> None:
        """Ask for every scope in one question (Alt+A)."""
        self.ask(list(sc.SCOPES), everything=True)

    def _answered(self, answer) -> None:
        granted = ", ".join(SCOPE_NAMES[s].lower() for s in answer["granted"] if s in SCOPE_NAMES) or "nothing"
        denied = ", ".join(SCOPE_NAMES[s].lower() for s in answer["denied"] if s in SCOPE_NAMES)
        self.answer_label.configure(text=f"The customer allowed: {granted}." + (f" Denied: {denied}." if denied else ""))

    def grants_changed(self, grants: dict, reason: str) -> None:
        """The customer's live grants."""
        if self.is_ended:
            return
        before, self.grants = self.grants, dict(grants)
        self._show_grants()
        if reason:
            self.set_status(f"Permissions changed: {reason}")
        if sc.CONTROL not in self.grants and self.controlling.get():
            self.set_control(False)
        self.control_button.configure(state="normal" if sc.CONTROL in self.grants else "disabled")
        if sc.VIEW in self.grants and self.watching is None:
            self._start_viewing()
        elif sc.VIEW not in self.grants and sc.VIEW in before:
            self.watching = None
            self.monitor_box.configure(state="disabled")
            self.screen.clear("The customer stopped sharing their screen.")
        if sc.SYSTEM_INFO in self.grants and sc.SYSTEM_INFO not in before and self.system.info is None:
            self.system.status.configure(text="Allowed. Press F5 to get the system information.")
        self._show_mode()

    def _show_grants(self) -> None:
        for scope, label in self.grant_labels.items():
            if scope in self.grants:
                until = self.grants[scope]
                text = "Allowed" + (time.strftime(" until %H:%M", time.localtime(until)) if until else "")
                label.configure(text="✔ " + text, fg=GREEN)
            else:
                label.configure(text="Not allowed", fg=GREY)

    # -- screen ----------------------------------------------------------------------------------

    def _start_viewing(self, monitor: int | None = None) -> None:
        session = self.session

        async def watch():
            monitors = await session.monitors()
            chosen = next((m for m in monitors if m.index == monitor), None) or \
                next((m for m in monitors if m.primary), monitors[0])
            await session.watch(chosen.index, credit=2)
            return monitors, chosen

        self.watching = -1 if monitor is None else monitor
        self.decoder.expect(monitor)
        self.screen.set_message("Waiting for the customer's screen…")
        self.screen.refresh_view()
        self.bridge.run(watch, done=self._watching, failed=self._viewing_failed)

    def _watching(self, result) -> None:
        monitors, chosen = result
        self.monitor_list = monitors
        self.watching = chosen.index
        self.decoder.expect(chosen.index)
        names = [self._monitor_name(m) for m in monitors]
        self.monitor_box.configure(values=names, state="readonly" if len(monitors) > 1 else "disabled")
        self.monitor_choice.set(self._monitor_name(chosen))
        self._show_mode()

    def _viewing_failed(self, error) -> None:
        self.watching = None
        self.screen.set_message(f"The screen is not available: {describe_error(error)}")

    @staticmethod
    def _monitor_name(monitor) -> str:
        return f"{monitor.index + 1}: {monitor.width}×{monitor.height}" + (" (main)" if monitor.primary else "")

    def _monitor_chosen(self) -> None:
        for monitor in self.monitor_list:
            if self._monitor_name(monitor) == self.monitor_choice.get() and monitor.index != self.watching:
                self._start_viewing(monitor.index)

    def _cursor_moved(self, x: int, y: int, visible: bool) -> None:
        self.screen.move_pointer(x, y, visible)

    def _show_update(self, update) -> None:
        if self.winfo_exists():
            self.screen.show(update)

    def _frames_shown(self, count: int) -> None:
        session = self.session
        if session is not None:
            self.bridge.to_network(lambda: [session.frame_shown() for _ in range(count)])

    def toggle_fit(self) -> None:
        """Scale to fit, or 1:1 with scroll bars (Alt+Z)."""
        self.fitting.set(not self.fitting.get())
        self.screen.set_fitting(self.fitting.get())

    # -- control ------------------------------------------------------------------------------

    def _control_clicked(self) -> None:
        self.set_control(self.controlling.get())

    def toggle_control(self) -> None:
        """Remote control on or off (Alt+R)."""
        self.set_control(not self.controlling.get())

    def set_control(self, on: bool) -> None:
        """Forward input (only when the customer allows control and the screen is shown)."""
        if on and sc.CONTROL not in self.grants:
            self.set_status("The customer has not allowed control: ask on the Permissions tab (Alt+P).")
            on = False
        if on:
            self.tabs.select(self.screen_tab)
        self.controlling.set(on)
        self.screen.set_controlling(on)
        self._show_mode()

    def is_controlling(self) -> bool:
        """Whether input goes to the customer now."""
        return self.screen.controlling

    def _show_mode(self) -> None:
        if self.screen.controlling:
            self.mode.configure(text="● Controlling — F8 for keys", bg=RED, fg="white")
        elif sc.VIEW in self.grants:
            hint = "Alt+R to control" if sc.CONTROL in self.grants else "control not allowed"
            self.mode.configure(text=f"View only ({hint})", bg=BLUE, fg="white")
        else:
            self.mode.configure(text="Not viewing", bg="#e0e0e0", fg=GREY)

    def _send_input(self, event: InputEvent) -> None:
        if self.session is None or not self.screen.controlling or sc.CONTROL not in self.grants:
            return
        self.bridge.run(self.session.send_input, event, failed=self._failed("Input was not applied"))

    def show_keys_menu(self) -> None:
        """Open the menu of key combinations (Alt+K, or F8 even while controlling)."""
        self.tabs.select(self.screen_tab)
        self.update_idletasks()
        x = self.keys_button.winfo_rootx()
        y = self.keys_button.winfo_rooty() + self.keys_button.winfo_height()
        self.keys_menu.tk_popup(x, y, 0)

    def send_combination(self, combination: keys.Combination) -> None:
        """Send a combination the console's own desktop would catch."""
        if not self.screen.controlling:
            self.set_status(f"{combination.label} not sent: turn remote control on first (Alt+R).")
            return
        for key, pressed in combination.events():
            self._send_input(InputEvent("key", key=key, pressed=pressed))
        self.set_status(f"Sent {combination.label}.")
        self.screen.canvas.focus_set()

    # -- chat ----------------------------------------------------------------------------------

    def send_chat(self) -> None:
        """Send what is typed in the chat line."""
        text = self.chat_entry.get().strip()
        if not text or self.session is None or self.is_ended:
            return
        self.chat_entry.delete(0, "end")
        mark = self.show_chat("You", text, time.time(), mine=True)
        self.bridge.run(self.session.send_chat, text, failed=lambda error: self._chat_failed(mark, error))

    def _chat_failed(self, mark: str, error) -> None:
        self.chat.configure(state="normal")
        self.chat.insert(f"{mark} lineend", f"  (not delivered: {describe_error(error)})", "note")
        self.chat.configure(state="disabled")

    def show_chat(self, author: str, text: str, sent_at: float, mine: bool = False) -> str:
        """Add a chat message; returns a mark at its line."""
        self.chat.configure(state="normal")
        mark = f"message{int(self.chat.index('end').split('.')[0])}"
        self.chat.mark_set(mark, "end-1c")
        self.chat.mark_gravity(mark, "left")
        self.chat.insert("end", time.strftime("%H:%M:%S ", time.localtime(sent_at)), "time")
        self.chat.insert("end", f"{author}: ", "me" if mine else "them")
        self.chat.insert("end", text + "\n")
        self.chat.configure(state="disabled")
        self.chat.see("end")
        return mark

    def chat_received(self, message) -> None:
        """A message from the customer."""
        self.show_chat("Customer", message.text, message.sent_at)
        if self.tabs.nametowidget(self.tabs.select()) is not self.chat_tab:
            self.tabs.tab(self.chat_tab, text="Chat ●")
            self.bell()

    def send_clipboard(self) -> None:
        """Put the console's clipboard text on the customer's clipboard (Alt+B)."""
        if self.session is None or self.is_ended:
            return
        try:
            text = self.clipboard_get()
        except tk.TclError:
            self.set_status("Your clipboard holds no text.")
            return
        sent = f"Your clipboard ({len(text)} characters) is on the customer's clipboard."
        self.bridge.run(self.session.send_clipboard, text, done=lambda _: self.set_status(sent),
                        failed=self._failed("The clipboard was not sent"))

    def clipboard_received(self, text: str) -> None:
        """The customer sent clipboard text: it goes on the console's clipboard."""
        self.clipboard_clear()
        self.clipboard_append(text)
        self.show_chat("Customer's clipboard", text, time.time())
        self.set_status("The customer's clipboard text is now on your clipboard.")

    # -- files -----------------------------------------------------------------------------------

    def send_file(self) -> None:
        """Pick a file and send it to the customer (Alt+U)."""
        if self.session is None or self.is_ended:
            return
        self.tabs.select(self.files_tab)
        # After the tab change has moved the focus: a dialog opened before it
        # loses the keyboard to the tab's button.
        self.after_idle(self._pick_and_send)

    def _pick_and_send(self) -> None:
        path = filedialog.askopenfilename(parent=self, title="Send a file to the customer")
        if path:
            self.set_status(f"Preparing {path}…")
            self.bridge.run(self.session.send_file, path, failed=self._not_sent)

    def _not_sent(self, error) -> None:
        if isinstance(error, TransferCancelled):
            self.set_status(f"Sending was stopped: {error}.")
        else:
            self.set_status(f"The file was not sent: {describe_error(error)}")

    def ask_for_file(self) -> None:
        """Ask the customer to pick a file and send it (Alt+G)."""
        if self.session is None or self.is_ended:
            return
        self.tabs.select(self.files_tab)
        prompt = self.file_prompt.get().strip() or "a file"
        self.bridge.run(self.session.request_file, prompt,
                        done=lambda transfer_id: self.set_status(f"Asked the customer for {prompt}."),
                        failed=self._failed("Asking for a file failed"))

    def transfer_changed(self, transfer) -> None:
        """A transfer started, progressed or ended."""
        self.nothing_transferred.pack_forget()
        row = self.transfer_rows.get(transfer.transfer_id)
        if row is None:
            frame = ttk.Frame(self.transfer_list, padding=(0, 4))
            frame.pack(fill="x")
            arrow = "↓ From the customer:" if transfer.direction == "in" else "↑ To the customer:"
            ttk.Label(frame, text=f"{arrow} {transfer.name} ({size(transfer.size)})",
                      font=("TkDefaultFont", 10, "bold")).grid(row=0, column=0, columnspan=3, sticky="w")
            bar = ttk.Progressbar(frame, maximum=max(transfer.size, 1), length=360)
            bar.grid(row=1, column=0, sticky="w")
            state = ttk.Label(frame, text="")
            state.grid(row=1, column=1, sticky="w", padx=8)
            cancel = ttk.Button(frame, text="Cancel", command=lambda: self.cancel_transfer(transfer.transfer_id))
            cancel.grid(row=1, column=2, sticky="w")
            frame.columnconfigure(2, weight=1)
            digest, path = tk.StringVar(), tk.StringVar()
            # Read-only entries: the hash and the path can be selected and copied.
            hash_entry = ttk.Entry(frame, textvariable=digest, state="readonly", width=76, font="TkFixedFont")
            path_entry = ttk.Entry(frame, textvariable=path, state="readonly", width=76, font="TkFixedFont")
            row = self.transfer_rows[transfer.transfer_id] = {
                "frame": frame, "bar": bar, "state": state, "cancel": cancel, "sha256": digest,
                "hash_entry": hash_entry, "path": path, "path_entry": path_entry, "transfer": transfer}
        row["transfer"] = transfer
        row["bar"].configure(value=transfer.done)
        if transfer.outcome is None:
            row["state"].configure(text=f"{percent(transfer.done, transfer.size)} of {size(transfer.size)}")
            return
        row["cancel"].grid_remove()
        if transfer.outcome == "done":
            row["state"].configure(text="Received" if transfer.direction == "in" else "Sent", foreground=GREEN)
            row["sha256"].set(f"SHA-256 {transfer.sha256}")
            row["hash_entry"].grid(row=2, column=0, columnspan=3, sticky="w", pady=(2, 0))
            if transfer.direction == "in":
                row["path"].set(f"Saved as {transfer.detail}")
                row["path_entry"].grid(row=3, column=0, columnspan=3, sticky="w", pady=(2, 0))
        else:
            row["state"].configure(text=f"{transfer.outcome.capitalize()}: {transfer.detail}", foreground=RED)

    def cancel_transfer(self, transfer_id: str) -> None:
        """Stop a transfer."""
        if self.session is not None:
            self.bridge.to_network(self.session.cancel_transfer, transfer_id)

    # -- system information ------------------------------------------------------------------------

    def refresh_system_info(self) -> None:
        """Ask for the customer's system information (F5)."""
        if self.session is None or not self.is_verified or self.is_ended:
            return
        self.tabs.select(self.system)
        self.system.loading()
        self.bridge.run(self.session.system_info, done=self.system.show,
                        failed=lambda error: self.system.show_problem(describe_error(error)))

    # -- the command prompt ------------------------------------------------------------------------

    def _open_shell(self, columns: int, rows: int) -> None:
        if self.session is None or self.is_ended:
            return
        self.bridge.run(self.session.open_shell, columns, rows, done=self._shell_opened,
                        failed=lambda error: self.terminal.problem(f"Not started: {describe_error(error)}"))

    def _shell_opened(self, shell_id: str) -> None:
        self.shell_id = shell_id
        self.terminal.opened()

    def _shell_input(self, data: bytes) -> None:
        if self.session is not None and self.shell_id is not None:
            self.bridge.run(self.session.shell_input, self.shell_id, data,
                            failed=lambda error: self.terminal.problem(describe_error(error)))

    def _resize_shell(self, columns: int, rows: int) -> None:
        if self.session is not None and self.shell_id is not None:
            self.bridge.run(self.session.resize_shell, self.shell_id, columns, rows, failed=lambda error: None)

    def _close_shell(self) -> None:
        if self.session is not None and self.shell_id is not None:
            self.bridge.run(self.session.close_shell, self.shell_id, failed=lambda error: None)

    def shell_output(self, shell_id: str, data: bytes) -> None:
        """Output of the customer's shell."""
        if shell_id == self.shell_id:
            self.terminal.feed(data)

    def shell_exited(self, shell_id: str, status, signal) -> None:
        """The customer's shell ended."""
        if shell_id == self.shell_id:
            self.shell_id = None
            self.terminal.exited(status, signal)


@implementer(IConsoleUI)
class TkConsoleUI:
    """
    The session core's view of a L{SessionWindow}: called on the reactor
    thread, drawn on the Tk thread.  Frames go to the window's decoding
    thread; file progress is passed on at most once per turn of the Tk loop.
    """

    def __init__(self, window: SessionWindow):
        self.window = window
        self.to_ui = window.bridge.to_ui
        self._lock = threading.Lock()
        self._transfers: dict[str, object] = {}

    def _call(self, method, *args):
        def call():
            if self.window.winfo_exists():
                getattr(self.window, method)(*args)

        self.to_ui(call)

    def verified(self):
        self._call("verified")

    def alarm(self, message):
        self._call("alarm", message)

    def grants_changed(self, grants, reason):
        self._call("grants_changed", dict(grants), reason)

    def chat_received(self, message):
        self._call("chat_received", message)

    def transfer_changed(self, transfer):
        # Transfers change on the reactor thread: the window gets a copy,
        # and only the latest state of each once per turn of its loop.
        with self._lock:
            first = not self._transfers
            self._transfers[transfer.transfer_id] = attrs.evolve(transfer)
        if first:
            self.to_ui(self._flush_transfers)

    def _flush_transfers(self):
        with self._lock:
            transfers, self._transfers = self._transfers, {}
        if self.window.winfo_exists():
            for transfer in transfers.values():
                self.window.transfer_changed(transfer)

    def frame_received(self, frame):
        decoder = self.window.decoder
        if decoder is not None:
            decoder.submit(frame)

    def cursor_moved(self, x, y, visible, shape):
        self._call("_cursor_moved", x, y, visible)

    def shell_output(self, shell_id, data):
        self._call("shell_output", shell_id, bytes(data))

    def shell_exited(self, shell_id, status, signal):
        self._call("shell_exited", shell_id, status, signal)

    def clipboard_received(self, text):
        self._call("clipboard_received", text)

    def ended(self, reason):
        self._call("ended", reason)

    def rated(self, stars, comment):
        self._call("rated", stars, comment)
