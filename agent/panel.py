"""
The panel: small, always on top, on screen for as long as a session
exists.  Who is connected and verified, what they are doing, what they may
do (each with Revoke, and Revoke all), their requests, files, the chat and
a red End session button.  Closing the panel ends the session.

It only draws and reports clicks; the session core decides everything.
"""

import time
import tkinter as tk
from tkinter import ttk

from agent import wording
from wire import session_commands as sc

RED = "#c62828"
WHOLE_SCREEN = "the whole screen"
GREEN = "#2e7d32"


class Panel(tk.Toplevel):
    """
    The session panel.  C{actions} has the callbacks (Tk thread):
    C{revoke(scope)}, C{revoke_all()}, C{end()}, C{close()}, C{chat(text)},
    C{cancel_transfer(transfer_id)}, C{send_clipboard()}.
    """

    def __init__(self, root, operator: str, organisation: str, actions):
        super().__init__(root)
        self.actions = actions
        self.operator = operator
        self.sharing: str | None = None
        self.title(f"Ponte — {operator} is connected")
        self.attributes("-topmost", True)
        self.protocol("WM_DELETE_WINDOW", actions.close)
        self.resizable(False, True)
        self.configure(padx=10, pady=8)

        ttk.Label(self, text=operator, font=("TkDefaultFont", 12, "bold")).pack(anchor="w")
        ttk.Label(self, text=organisation).pack(anchor="w")
        self.badge = tk.Label(self, text="Checking the code…", fg="#555555", justify="left")
        self.badge.pack(anchor="w", pady=(2, 4))
        self.activity = tk.Label(self, text="", fg=RED, font=("TkDefaultFont", 10, "bold"), justify="left", wraplength=300)
        self.activity.pack(anchor="w")

        self.requests = ttk.Frame(self)
        self._prompts = []
        self._allowed_label = None

        self._allowed_label = ttk.Label(self, text="Allowed now:")
        self._allowed_label.pack(anchor="w", pady=(6, 0))
        self.grants_frame = ttk.Frame(self)
        self.grants_frame.pack(fill="x")
        self.nothing = ttk.Label(self.grants_frame, text="nothing", foreground="#777777")
        self.nothing.pack(anchor="w")
        self.revoke_all = ttk.Button(self, text="Revoke all", underline=0, command=actions.revoke_all, state="disabled")
        self.revoke_all.pack(anchor="w", pady=(2, 4))
        self.clipboard = ttk.Button(self, text="Send my clipboard to the operator", command=actions.send_clipboard)

        self.transfers = ttk.Frame(self)
        self.transfers.pack(fill="x")
        self._transfer_rows = {}

        ttk.Label(self, text="Chat").pack(anchor="w", pady=(6, 0))
        self.chat = tk.Text(self, height=7, width=42, wrap="word", state="disabled", takefocus=0)
        self.chat.pack(fill="both", expand=True)
        self.chat.tag_configure("me", foreground="#1a237e")
        self.chat.tag_configure("them", foreground="#000000")
        self.chat.tag_configure("time", foreground="#888888")
        line = ttk.Frame(self)
        line.pack(fill="x", pady=(2, 6))
        self.typing = tk.StringVar()
        entry = ttk.Entry(line, textvariable=self.typing)
        entry.pack(side="left", fill="x", expand=True)
        entry.bind("<Return>", lambda event: self._send_chat())
        ttk.Button(line, text="Send", command=self._send_chat).pack(side="left", padx=(4, 0))

        self.end_button = tk.Button(
            self, text="End session", underline=0, command=actions.end, bg=RED, fg="white",
            activebackground="#8e0000", activeforeground="white", font=("TkDefaultFont", 11, "bold"),
        )
        self.end_button.pack(fill="x")
        self.bind("<Alt-e>", lambda event: actions.end())
        self.bind("<Alt-r>", lambda event: actions.revoke_all())
        # Top right corner, whatever width the content takes.
        self.geometry("-10+20")
        self.focus_set()

    # -- what the session core reports --------------------------------------------

    def verified(self) -> None:
        """The code matched end to end."""
        self.badge.configure(text="✔ Verified: the code matches", fg=GREEN)

    def show_activity(self, activity: set) -> None:
        """What the operator is doing right now, in plain words."""
        lines = []
        if "controlling" in activity:
            lines.append(f"{self.operator} can control your mouse and keyboard")
        if "viewing" in activity:
            what = f"the window “{self.sharing}” only" if self.sharing else "your screen"
            lines.append(f"{self.operator} is seeing {what}")
        if "shell" in activity:
            lines.append(f"{self.operator} is using a command prompt")
        self.activity.configure(text="\n".join(lines))

    def show_grants(self, grants: dict) -> None:
        """The list of what is allowed, each with its own Revoke."""
        for child in self.grants_frame.winfo_children():
            if child is not self.nothing:
                child.destroy()
        if not grants:
            self.nothing.pack(anchor="w")
        else:
            self.nothing.pack_forget()
        for scope in sc.SCOPES:
            if scope not in grants:
                continue
            row = ttk.Frame(self.grants_frame)
            row.pack(fill="x")
            until = grants[scope]
            label = wording.ALLOWED[scope] + (time.strftime(" (until %H:%M)", time.localtime(until)) if until else "")
            ttk.Label(row, text=label).pack(side="left")
            ttk.Button(row, text="Revoke", command=lambda s=scope: self.actions.revoke(s)).pack(side="right")
        self.revoke_all.configure(state="normal" if grants else "disabled")
        if sc.CLIPBOARD in grants:
            self.clipboard.pack(after=self.revoke_all, anchor="w")
        else:
            self.clipboard.pack_forget()

    def ask(self, scopes: list, everything: bool, duration: float, answer, windows=()) -> None:
        """
        Ask whether the operator may use C{scopes}; C{answer(allowed, window)}
        gets the scopes allowed (all of them, or none, when asked as one) and,
        when the screen is asked for, the window chosen to share alone (its
        id; C{None} for the whole screen) from C{windows} ((id, title) pairs).
        """
        self.requests.pack(fill="x", pady=(4, 0), before=self._allowed_label)
        box = ttk.Frame(self.requests, padding=6, relief="groove")
        box.pack(fill="x", pady=2)
        if len(scopes) == 1:
            question = f"{self.operator} wants to {wording.WANTS[scopes[0]]} ({wording.duration(duration)})."
        else:
            question = f"{wording.duration(duration).capitalize()}, {self.operator} wants to:\n" + "\n".join(
                f"  • {wording.WANTS[s]}" for s in scopes
            )
        ttk.Label(box, text=question, wraplength=360, justify="left", font=("TkDefaultFont", 10, "bold")).pack(anchor="w")
        choice = tk.StringVar(value=WHOLE_SCREEN)
        if sc.VIEW in scopes and windows:
            row = ttk.Frame(box)
            row.pack(anchor="w", pady=(4, 0))
            ttk.Label(row, text="Show:").pack(side="left")
            titles = [WHOLE_SCREEN] + [f"only “{title}”" for _, title in windows]
            ttk.Combobox(row, textvariable=choice, values=titles, state="readonly", width=26).pack(side="left", padx=4)
        buttons = ttk.Frame(box)
        buttons.pack(anchor="w", pady=(4, 0))

        def reply(allowed):
            box.destroy()
            self._prompts.remove(entry)
            if not self._prompts:
                # An emptied frame keeps its size in Tk: take it out.
                self.requests.pack_forget()
            chosen = [w for w in windows if f"only “{w[1]}”" == choice.get()]
            if allowed and chosen:
                self.sharing = chosen[0][1]
            answer(allowed, chosen[0][0] if allowed and chosen else None)

        allow_text = "Allow everything for this session" if everything else "Allow"
        allow = ttk.Button(buttons, text=allow_text, underline=0, command=lambda: reply(list(scopes)))
        allow.pack(side="left")
        deny = ttk.Button(buttons, text="Deny", underline=0, command=lambda: reply([]))
        deny.pack(side="left", padx=4)
        entry = (allow, deny)
        self._prompts.append(entry)
        self.bind("<Alt-a>", lambda event: self._prompts and self._prompts[0][0].invoke())
        self.bind("<Alt-d>", lambda event: self._prompts and self._prompts[0][1].invoke())
        self.deiconify()
        self.lift()

    def show_chat(self, author: str, text: str, sent_at: float) -> None:
        """Add a chat message."""
        self.chat.configure(state="normal")
        self.chat.insert("end", time.strftime("%H:%M ", time.localtime(sent_at)), "time")
        self.chat.insert("end", f"{author}: ", "me" if author == "You" else "them")
        self.chat.insert("end", text + "\n")
        self.chat.configure(state="disabled")
        self.chat.see("end")

    def show_transfer(self, transfer) -> None:
        """A file transfer started, progressed or ended."""
        row = self._transfer_rows.get(transfer.transfer_id)
        if row is None:
            frame = ttk.Frame(self.transfers)
            frame.pack(fill="x", pady=1)
            direction = "Receiving" if transfer.direction == "in" else "Sending"
            label = ttk.Label(frame, text=f"{direction} {transfer.name}")
            label.pack(anchor="w")
            bar = ttk.Progressbar(frame, maximum=max(transfer.size, 1), length=220)
            bar.pack(side="left")
            cancel = ttk.Button(frame, text="Cancel", command=lambda: self.actions.cancel_transfer(transfer.transfer_id))
            cancel.pack(side="left", padx=4)
            row = self._transfer_rows[transfer.transfer_id] = (frame, label, bar, cancel)
        frame, label, bar, cancel = row
        bar.configure(value=transfer.done)
        if transfer.outcome is not None:
            cancel.destroy()
            words = {"done": "saved" if transfer.direction == "in" else "sent", "cancelled": "cancelled", "failed": "failed"}
            label.configure(text=f"{transfer.name}: {words[transfer.outcome]}")
            if transfer.outcome != "done":
                bar.destroy()

    def _send_chat(self) -> None:
        text = self.typing.get().strip()
        if text:
            self.typing.set("")
            self.actions.chat(text)
