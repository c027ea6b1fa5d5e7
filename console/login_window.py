"""
The console's first window: which gateway (remembered), the CA its
certificate must verify against, user name and password; Log in (the
button, Alt+L or Return).  Every refusal is said plainly: wrong
credentials, a disabled account, too many attempts (counting down to when
the next one is allowed), a gateway that cannot be reached (one short line
per way the ladder tried) and a certificate that does not verify, with the
SHA-256 fingerprint of the certificate the server presented so that the
operator can compare it with the one the administrator gives them.  That
certificate is fetched by a separate handshake only to be shown; it is
never trusted.

When the gateway asks for more, the form grows the rows for it: the code
of the operator's authenticator app, or a new password typed twice (when
the administrator requires one, or when the operator ticks "Change my
password").
"""

import hashlib
import socket
import ssl
import tkinter as tk
from tkinter import filedialog, ttk

import attrs

from wire import commands, ladder

# The ways of the transport ladder, as the operator reads them.
WAYS = {
    ladder.RAW: "direct",
    ladder.HTTPS_PORT: "HTTPS port",
    ladder.CONNECT: "proxy",
    ladder.TUNNEL: "HTTPS tunnel",
    ladder.TUNNEL_PROXY: "HTTPS tunnel through the proxy",
}


@attrs.frozen
class LoginRequest:
    """What the operator filled in."""

    gateway: str
    ca: str
    username: str
    password: str = attrs.field(repr=False)
    totp: str = attrs.field(default="", repr=False)
    new_password: str = attrs.field(default="", repr=False)


class CertificateNotVerified(Exception):
    """
    The gateway's certificate does not verify against the configured CA.
    C{fingerprint} is the SHA-256 of the certificate the server presented
    (colon-separated hex), or C{None} with C{problem} saying why it could
    not be fetched.
    """

    def __init__(self, report: ladder.Report, fingerprint: str | None, problem: str = ""):
        super().__init__("the gateway's certificate does not verify")
        self.report = report
        self.fingerprint = fingerprint
        self.problem = problem


def certificate_refused(report: ladder.Report) -> ladder.Attempt | None:
    """The first way that failed because the certificate did not verify, if any."""
    for attempt in report.attempts:
        if not attempt.ok and "does not verify" in attempt.detail:
            return attempt
    return None


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint as C{AB:CD:…}."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def presented_certificate(host: str, port: int, timeout: float = 5.0) -> bytes:
    """
    The certificate (DER) a TLS server at C{host}:C{port} presents, fetched
    WITHOUT verifying it: only to show its fingerprint.  Blocking; run it
    in a thread.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


def short_report(report: ladder.Report) -> list[str]:
    """One short line per way tried: how it failed."""
    return [f"{WAYS.get(a.way, a.way)}: {a.detail}" for a in report.attempts if a.detail and not a.detail.startswith("not tried")]


def describe(error: Exception) -> str:
    """What to tell the operator when logging in failed."""
    if isinstance(error, commands.AuthenticationFailed):
        return "Wrong user name or password."
    if isinstance(error, commands.AccountDisabled):
        return "This account is disabled. Ask your administrator to enable it."
    if isinstance(error, commands.TotpRequired):
        return "This account also needs a code: type the 6 digits your authenticator app shows now."
    if isinstance(error, commands.WrongTotp):
        if "used already" in str(error):
            return "This code was used already. Wait for the next one your authenticator app shows."
        return "Wrong authenticator code. Type the 6 digits your app shows now."
    if isinstance(error, commands.PasswordChangeRequired):
        return ("Your administrator requires a new password before you go on. Choose one of at least "
                f"{MINIMUM_PASSWORD} characters, type it twice and log in.")
    if isinstance(error, commands.WeakPassword):
        return f"The gateway refused the new password: {error}."
    if isinstance(error, commands.RateLimited):
        seconds = commands.RateLimited.retry_after(str(error))
        when = f"in {seconds} s" if seconds else "later"
        return f"Too many failed attempts from this computer. You can try again {when}."
    if isinstance(error, CertificateNotVerified):
        text = (
            "The gateway's certificate does not verify against the CA certificate configured here, "
            "so the console did not connect. Someone may be intercepting the connection, or the CA "
            "file is not the right one."
        )
        if error.fingerprint:
            return text + " The server presented a certificate with this SHA-256 fingerprint; compare it with the one your administrator gives you:"
        return text + f" (Its fingerprint could not be fetched: {error.problem}.)"
    if isinstance(error, ladder.NoWayThrough):
        return "Cannot reach the gateway.\n" + "\n".join(short_report(error.report))
    if isinstance(error, CAFileProblem):
        return str(error)
    if isinstance(error, commands.GatewayError):
        return f"The gateway refused: {error}"
    return f"Logging in failed: {error}"


class CAFileProblem(Exception):
    """The CA certificate file cannot be used."""


# The gateway's rule (gateway.passwords.check_new_password), checked here
# first only to say so sooner: the gateway decides.
MINIMUM_PASSWORD = 12
CODE = "Authenticator code"
NEW = "New password"
AGAIN = "New password again"
# Shown only when needed (rows below the password).
_EXTRA_ROWS = (CODE, NEW, AGAIN)


class LoginFrame(ttk.Frame):
    """
    The login form.  C{on_submit(LoginRequest)} is called on Log in; the
    owner then calls L{show_error} or replaces the frame.
    """

    def __init__(self, parent, gateway: str, ca: str, username: str, on_submit, message: str = ""):
        super().__init__(parent, padding=24)
        self.on_submit = on_submit
        self._countdown = None
        ttk.Label(self, text="Ponte console", font=("TkDefaultFont", 16, "bold")).grid(row=0, column=0, columnspan=3, sticky="w")
        ttk.Label(self, text="Log in to your support gateway.").grid(row=1, column=0, columnspan=3, sticky="w", pady=(2, 14))
        self.gateway = tk.StringVar(value=gateway)
        self.ca = tk.StringVar(value=ca)
        self.username = tk.StringVar(value=username)
        self.password = tk.StringVar()
        self.code = tk.StringVar()
        self.new_password = tk.StringVar()
        self.again = tk.StringVar()
        self.entries = {}
        self.labels = {}
        hidden = {"show": "•"}
        rows = (("Gateway", self.gateway, {}), ("CA certificate", self.ca, {}),
                ("User name", self.username, {}), ("Password", self.password, hidden),
                (CODE, self.code, {"width": 10}), (NEW, self.new_password, hidden), (AGAIN, self.again, hidden))
        for row, (label, variable, options) in enumerate(rows, start=2):
            self.labels[label] = ttk.Label(self, text=label)
            self.labels[label].grid(row=row, column=0, sticky="w", padx=(0, 10), pady=3)
            entry = ttk.Entry(self, textvariable=variable, **{"width": 34, **options})
            entry.grid(row=row, column=1, sticky="w" if label == CODE else "we", pady=3)
            entry.bind("<Return>", lambda event: self.submit())
            self.entries[label] = entry
        for label in _EXTRA_ROWS:
            self._show_row(label, False)
        # The file's name is at the end of its path.
        self.entries["CA certificate"].xview_moveto(1.0)
        self.browse = ttk.Button(self, text="Browse…", underline=0, command=self._browse)
        self.browse.grid(row=3, column=2, padx=(6, 0))
        self.changing = tk.BooleanVar(value=False)
        self.change = ttk.Checkbutton(self, text="Change my password", underline=0, variable=self.changing,
                                      command=self._changing_toggled)
        self.change.grid(row=9, column=0, columnspan=2, sticky="w", pady=(12, 4))
        self.button = ttk.Button(self, text="Log in", underline=0, command=self.submit)
        self.button.grid(row=9, column=1, sticky="e", pady=(12, 4))
        self.message = ttk.Label(self, text=message, foreground="#b00020", wraplength=440, justify="left")
        self.message.grid(row=10, column=0, columnspan=3, sticky="w", pady=(8, 0))
        # The presented certificate's fingerprint, selectable and copyable.
        self.fingerprint = tk.StringVar()
        self.fingerprint_row = ttk.Frame(self)
        self.fingerprint_text = ttk.Label(self.fingerprint_row, font=("TkFixedFont", 10), justify="left")
        self.fingerprint_text.pack(side="left", fill="x", expand=True)
        self.copy_fingerprint = ttk.Button(self.fingerprint_row, text="Copy fingerprint", underline=5, command=self._copy_fingerprint)
        self.copy_fingerprint.pack(side="left", padx=(6, 0))
        self.columnconfigure(1, weight=1)
        top = self.winfo_toplevel()
        for key, action in self._keys():
            top.bind(key, lambda event, action=action: action())
        self.bind("<Destroy>", self._destroyed)
        first_empty = next((e for e, v in zip(self.entries.values(), (self.gateway, self.ca, self.username, self.password)) if not v.get()), None)
        (first_empty or self.entries["Password"]).focus_set()

    def _keys(self):
        return (("<Alt-l>", self.submit), ("<Alt-b>", self._browse), ("<Alt-f>", self._copy_fingerprint),
                ("<Alt-c>", self.change.invoke))

    def _show_row(self, label: str, shown: bool) -> None:
        for widget in (self.labels[label], self.entries[label]):
            if shown:
                widget.grid()
            else:
                widget.grid_remove()

    def shown(self, label: str) -> bool:
        """Whether the row C{label} is on the form now."""
        return bool(self.entries[label].winfo_manager())

    def ask_code(self) -> None:
        """Show the authenticator code's row, empty, with the focus."""
        self._show_row(CODE, True)
        self.code.set("")
        self.entries[CODE].focus_set()

    def ask_new_password(self) -> None:
        """Show the new password's rows (ticking "Change my password"), with the focus."""
        self.changing.set(True)
        self._changing_toggled()

    def _changing_toggled(self) -> None:
        on = self.changing.get()
        for label in (NEW, AGAIN):
            self._show_row(label, on)
        if on:
            self.entries[NEW].focus_set()
        else:
            self.new_password.set("")
            self.again.set("")

    def _destroyed(self, event) -> None:
        if event.widget is self:
            top = self.winfo_toplevel()
            for key, _ in self._keys():
                top.unbind(key)

    def _browse(self) -> None:
        path = filedialog.askopenfilename(parent=self, title="The gateway's CA certificate",
                                          filetypes=(("Certificates", "*.crt *.pem"), ("All files", "*")))
        if path:
            self.ca.set(path)

    def _copy_fingerprint(self) -> None:
        if self.fingerprint.get():
            self.clipboard_clear()
            self.clipboard_append(self.fingerprint.get())

    def request(self) -> LoginRequest:
        """What the form holds now (the extra rows' values only while they are shown)."""
        return LoginRequest(
            self.gateway.get().strip(), self.ca.get().strip(), self.username.get().strip(), self.password.get(),
            self.code.get().strip() if self.shown(CODE) else "",
            self.new_password.get() if self.changing.get() else "",
        )

    def _problem(self, request: LoginRequest) -> str | None:
        """What is missing or inconsistent in C{request}, in a sentence."""
        needed = [("the gateway", request.gateway), ("the CA certificate", request.ca),
                  ("your user name", request.username), ("your password", request.password)]
        if self.shown(CODE):
            needed.append(("the authenticator code", request.totp))
        if self.changing.get():
            needed += [("the new password", request.new_password), ("the new password again", self.again.get())]
        missing = [name for name, value in needed if not value]
        if missing:
            return "Please fill in " + " and ".join(missing) + "."
        if self.changing.get():
            if request.new_password != self.again.get():
                return "The two new passwords differ. Type the same one twice."
            if len(request.new_password) < MINIMUM_PASSWORD:
                return f"A new password needs at least {MINIMUM_PASSWORD} characters."
        return None

    def submit(self) -> None:
        """Log in with what was typed (ignored while busy or counting down)."""
        if str(self.button["state"]) == "disabled":
            return
        request = self.request()
        problem = self._problem(request)
        if problem:
            self.show_error(problem)
            return
        self._clear_fingerprint()
        self.set_busy(True)
        self.message.configure(text=f"Connecting to {request.gateway}…", foreground="#333333")
        self.on_submit(request)

    def set_busy(self, busy: bool) -> None:
        state = "disabled" if busy else "normal"
        self.button.configure(state=state)
        self.change.configure(state=state)
        for entry in self.entries.values():
            entry.configure(state=state)

    def _clear_fingerprint(self) -> None:
        self.fingerprint.set("")
        self.fingerprint_row.grid_forget()

    def show_error(self, error) -> None:
        """Say why logging in failed (an exception, or a sentence)."""
        if self._countdown is not None:
            self.after_cancel(self._countdown)
            self._countdown = None
        text = error if isinstance(error, str) else describe(error)
        self.message.configure(text=text, foreground="#b00020")
        self._clear_fingerprint()
        if isinstance(error, CertificateNotVerified) and error.fingerprint:
            self.fingerprint.set(error.fingerprint)
            # 32 bytes: two lines of 16.
            self.fingerprint_text.configure(text=error.fingerprint[:47] + "\n" + error.fingerprint[48:])
            self.fingerprint_row.grid(row=11, column=0, columnspan=3, sticky="we", pady=(6, 0))
        if isinstance(error, commands.RateLimited):
            seconds = commands.RateLimited.retry_after(str(error))
            if seconds:
                self._count_down(seconds)
                return
        self.set_busy(False)
        if isinstance(error, commands.AuthenticationFailed):
            self.password.set("")
            self.entries["Password"].focus_set()
        elif isinstance(error, CAFileProblem):
            self.entries["CA certificate"].focus_set()
        elif isinstance(error, (commands.TotpRequired, commands.WrongTotp)):
            if isinstance(error, commands.TotpRequired):
                self.message.configure(foreground="#333333")
            self.ask_code()
        elif isinstance(error, commands.PasswordChangeRequired):
            self.ask_new_password()
        elif isinstance(error, commands.WeakPassword):
            self.new_password.set("")
            self.again.set("")
            self.entries[NEW].focus_set()

    def _count_down(self, seconds: int) -> None:
        if seconds <= 0:
            self._countdown = None
            self.set_busy(False)
            self.message.configure(text="You can try again now.", foreground="#333333")
            self.entries["Password"].focus_set()
            return
        self.set_busy(True)
        self.message.configure(
            text=f"Too many failed attempts from this computer. You can try again in {seconds} s.", foreground="#b00020"
        )
        self._countdown = self.after(1000, self._count_down, seconds - 1)
