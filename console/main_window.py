"""
The operator's desk window: "New session" (Alt+N) makes a code and shows it
large as C{XXXX-XXX} with a live countdown and a Copy button (Alt+C); "New
team session" (Alt+T, for an operator in a team) makes one that waits in
the whole team's queue; the list of this operator's codes and their
states, with Cancel code (Alt+A or Delete; Remove, Alt+R, for a finished
one); the queue of customers waiting (on our codes and on our team's),
with Pick up (Alt+P, Return or a double click; with no row selected, Alt+P
picks up whoever has waited longest; a teammate's code asks for its last
part, which the customer reads out).  A customer joining rings the bell,
highlights their row, counts them in the window title and shows a message
for a while; a teammate picking one up takes the row away and says so.

It only draws: every action goes to C{actions} (the app), which does the
network work through the bridge and calls back here on the Tk thread.
"""

import time
import tkinter as tk
from tkinter import ttk

from console.secret_prompt import SecretPrompt

# A code's states, as the operator reads them.
WAITING_FOR_CUSTOMER = "waiting for customer"
CUSTOMER_WAITING = "customer waiting"
IN_SESSION = "in session"
EXPIRED = "expired"
CUSTOMER_LEFT = "customer left"
NOT_PICKED_UP = "not picked up in time"
ENDED = "ended"
TAKEN = "picked up by a teammate"
FINISHED = (EXPIRED, CUSTOMER_LEFT, NOT_PICKED_UP, ENDED, TAKEN)

TITLE = "Ponte console"
HIGHLIGHT = "#ffe58a"


def countdown(seconds: float) -> str:
    """C{m:ss} left, never negative."""
    seconds = max(0, int(seconds + 0.999))
    return f"{seconds // 60}:{seconds % 60:02d}"


class MainWindow(ttk.Frame):
    """
    The desk.  C{actions} has C{new_session(team)}, C{cancel(routing)},
    C{pick_up(routing, secret=None)} and C{set_title(text)}; C{clock()} is
    the wall clock the codes' expiry times are on; C{team} the operator's
    team ("" for none).
    """

    def __init__(self, parent, operator: str, actions, clock=time.time, team: str = ""):
        super().__init__(parent, padding=(16, 12))
        self.operator = operator
        self.actions = actions
        self.clock = clock
        self.team = team
        self.codes = {}  # routing → {"live": LiveCode, "state": str}
        self.queue = {}  # routing → the time the customer joined
        self.teammates = {}  # routing → who made it, for team codes in the queue that are not ours
        self.shown = None  # the routing part of the code shown large
        self._banner_timer = None
        self._banner_about = None
        self._ticking = None

        top = ttk.Frame(self)
        top.pack(fill="x")
        self.new_button = ttk.Button(top, text="New session", underline=0, command=self.new_session)
        self.new_button.pack(side="left")
        self.team_button = ttk.Button(top, text="New team session", underline=4,
                                      command=lambda: self.new_session(team=True))
        if team:
            self.team_button.pack(side="left", padx=(6, 0))
        hint = f"Alt+N makes a code to read to the customer; Alt+T one any of {team} can pick up." if team else \
            "Alt+N makes a code to read to the customer."
        ttk.Label(top, text=hint, foreground="#555555").pack(side="left", padx=10)
        ttk.Button(top, text="Report a problem", underline=3, command=lambda: self.actions.report_problem()).pack(side="right")
        ttk.Button(top, text="Replay a recording…", underline=5, command=lambda: self.actions.replay()).pack(
            side="right", padx=6)
        parent.bind("<Alt-y>", lambda event: self.actions.replay())
        parent.bind("<Alt-o>", lambda event: self.actions.report_problem())

        # The code, large.
        self.code_box = ttk.LabelFrame(self, text="Code", padding=(12, 6))
        self.code_box.pack(fill="x", pady=(10, 6))
        self.code_text = tk.Label(self.code_box, text="— — — — - — — —", font=("TkFixedFont", 34, "bold"), fg="#999999")
        self.code_text.pack(side="left", padx=(0, 16))
        right = ttk.Frame(self.code_box)
        right.pack(side="left", fill="y")
        self.expiry = ttk.Label(right, text="Press New session for a code.", font=("TkDefaultFont", 11))
        self.expiry.pack(anchor="w", pady=(6, 4))
        self.copy_button = ttk.Button(right, text="Copy", underline=0, command=self.copy, state="disabled")
        self.copy_button.pack(anchor="w")

        # The transient notification.
        self.banner = tk.Label(self, text="", bg=HIGHLIGHT, anchor="w", padx=8, pady=4, font=("TkDefaultFont", 10, "bold"))

        panes = ttk.Frame(self)
        panes.pack(fill="both", expand=True)
        self.codes_list, self.cancel_button = self._table(
            panes, "Your codes", (("code", "Code", 110), ("state", "State", 180), ("expires", "Expires in", 90)),
            "Cancel code", 1, self.cancel_selected)
        self.queue_list, self.pick_up_button = self._table(
            panes, "Customers waiting", (("code", "Code", 110), ("waiting", "Waiting for", 100), ("queue", "Queue", 90)),
            "Pick up", 0, self.pick_up_selected)
        self.codes_list.master.pack(side="left", fill="both", expand=True, padx=(0, 8))
        self.queue_list.master.pack(side="left", fill="both", expand=True)
        self.queue_list.tag_configure("new", background=HIGHLIGHT)
        self.codes_list.tag_configure("finished", foreground="#888888")
        self.codes_list.tag_configure("customer", background=HIGHLIGHT)

        self.codes_list.bind("<<TreeviewSelect>>", self._code_selected)
        self.codes_list.bind("<Delete>", lambda event: self.cancel_selected())
        self.queue_list.bind("<<TreeviewSelect>>", self._queue_selected)
        self.queue_list.bind("<Return>", lambda event: self.pick_up_selected())
        self.queue_list.bind("<Double-1>", self._double_click)

        toplevel = self.winfo_toplevel()
        self._keys = {"<Alt-n>": self.new_session, "<Alt-c>": self.copy, "<Alt-a>": self.cancel_selected,
                      "<Alt-r>": self.cancel_selected,
                      "<Alt-p>": self.pick_up_selected}
        if team:
            self._keys["<Alt-t>"] = lambda: self.new_session(team=True)
        for key, action in self._keys.items():
            toplevel.bind(key, lambda event, action=action: action())
        self.bind("<Destroy>", self._destroyed)
        self.new_button.focus_set()
        self.update_title()
        self._tick()

    @staticmethod
    def _table(parent, label, columns, button, underline, command):
        """A labelled list with C{columns} (name, heading, width) and a button under it."""
        box = ttk.LabelFrame(parent, text=label, padding=6)
        tree = ttk.Treeview(box, columns=[c[0] for c in columns], show="headings", height=8, selectmode="browse")
        for column, heading, width in columns:
            tree.heading(column, text=heading, anchor="w")
            tree.column(column, width=width, anchor="w", stretch=True)
        tree.pack(fill="both", expand=True)
        row = ttk.Frame(box)
        row.pack(fill="x", pady=(4, 0))
        action = ttk.Button(row, text=button, underline=underline, command=command, state="disabled")
        action.pack(side="right")
        return tree, action

    def _destroyed(self, event) -> None:
        if event.widget is self:
            if self._ticking is not None:
                self.after_cancel(self._ticking)
            toplevel = self.winfo_toplevel()
            for key in self._keys:
                toplevel.unbind(key)

    # -- actions -------------------------------------------------------------------------

    def new_session(self, team: bool = False) -> None:
        if str(self.new_button["state"]) == "disabled":
            return
        self.new_button.configure(state="disabled")
        self.team_button.configure(state="disabled")
        self.actions.new_session(team)

    def copy(self) -> None:
        """Put the code shown large on the clipboard, as read out (C{XXXX-XXX})."""
        entry = self.codes.get(self.shown)
        if entry is None:
            return
        self.clipboard_clear()
        self.clipboard_append(entry["live"].display())
        self.flash(f"Code {entry['live'].display()} copied.", seconds=3, highlight=False)

    def cancel_selected(self) -> None:
        routing = self._selected(self.codes_list)
        if routing is None or str(self.cancel_button["state"]) == "disabled":
            return
        if self.codes[routing]["state"] in FINISHED:
            self.remove_code(routing)
            return
        self.cancel_button.configure(state="disabled")
        self.actions.cancel(routing)

    def pick_up_selected(self) -> None:
        routing = self._selected(self.queue_list)
        if routing is None and self.queue:
            # Nothing chosen: whoever has waited longest.
            routing = min(self.queue, key=self.queue.get)
        if routing is None or routing not in self.queue:
            return
        self.queue_list.item(routing, tags=())
        if routing in self.codes:
            self.actions.pick_up(routing)
        else:
            SecretPrompt(self, routing, self.teammates.get(routing, "A teammate"),
                         lambda secret: self.actions.pick_up(routing, secret))

    def _double_click(self, event) -> None:
        row = self.queue_list.identify_row(event.y)
        if row:
            self.queue_list.selection_set(row)
            self.pick_up_selected()

    @staticmethod
    def _selected(tree):
        selection = tree.selection()
        return selection[0] if selection else None

    def _code_selected(self, event=None) -> None:
        routing = self._selected(self.codes_list)
        if routing is None:
            self.cancel_button.configure(state="disabled")
            return
        state = self.codes[routing]["state"]
        finished = state in FINISHED
        self.cancel_button.configure(state="disabled" if state == IN_SESSION else "normal",
                                     text="Remove" if finished else "Cancel code", underline=0 if finished else 1)
        self.show_large(routing)

    def _queue_selected(self, event=None) -> None:
        routing = self._selected(self.queue_list)
        self.pick_up_button.configure(state="normal" if self.queue else "disabled")
        if routing:
            self.queue_list.item(routing, tags=())

    # -- what the app tells us -------------------------------------------------------------

    def code_made(self, live) -> None:
        """A new code: show it large and list it."""
        self.set_enabled(True)
        self.codes[live.routing] = {"live": live, "state": WAITING_FOR_CUSTOMER}
        self.codes_list.insert("", 0, iid=live.routing, values=(live.display(), WAITING_FOR_CUSTOMER, ""))
        self.show_large(live.routing)
        self.codes_list.selection_set(live.routing)
        self.codes_list.focus(live.routing)
        self.copy_button.focus_set()
        self._refresh()

    def new_session_failed(self, message: str) -> None:
        self.set_enabled(True)
        self.flash(message, seconds=8)

    def show_large(self, routing: str) -> None:
        self.shown = routing
        entry = self.codes[routing]
        self.code_text.configure(text=entry["live"].display())
        self.copy_button.configure(state="normal")
        self._refresh()

    def set_state(self, routing: str, state: str) -> None:
        """A code's state changed."""
        entry = self.codes.get(routing)
        if entry is None:
            if state != CUSTOMER_WAITING:
                # A teammate's code in our queue.
                self._leave_queue(routing)
            return
        entry["state"] = state
        tags = ("finished",) if state in FINISHED else ("customer",) if state == CUSTOMER_WAITING else ()
        self.codes_list.item(routing, tags=tags)
        if state != CUSTOMER_WAITING:
            self._leave_queue(routing)
        if self._selected(self.codes_list) == routing:
            self._code_selected()
        self._refresh()

    def customer_waiting(self, routing: str, team: str = "", created_by: str = "") -> None:
        """A customer joined one of our codes, or one of our team's: tell the operator."""
        ours = routing in self.codes
        if not ours and not team:
            return
        self.queue[routing] = self.clock()
        display = self._shown_code(routing)
        if not ours:
            self.teammates[routing] = created_by
        if not self.queue_list.exists(routing):
            where = ("team" if team else "yours") if ours else f"team ({created_by})"
            self.queue_list.insert("", "end", iid=routing, values=(display, "0:00", where), tags=("new",))
        if ours:
            self.set_state(routing, CUSTOMER_WAITING)
        # Highlighted until the operator selects or picks up the row.
        self.queue_list.item(routing, tags=("new",))
        self._queue_selected()
        self.bell()
        self.flash(f"A customer is waiting on {'' if ours else 'team '}code {display} — Alt+P picks them up.",
                   seconds=10, about=routing)
        self.update_title()

    def _shown_code(self, routing: str) -> str:
        """Our code as read out, or a teammate's routing part (its last part is not ours to know)."""
        entry = self.codes.get(routing)
        return entry["live"].display() if entry else f"{routing}-…"

    def customer_taken(self, routing: str, by: str) -> None:
        """A teammate picked up the customer on a team code."""
        if routing not in self.queue and routing not in self.codes:
            return
        display = self._shown_code(routing)
        self._leave_queue(routing)
        self.set_state(routing, TAKEN)
        self.flash(f"{by} picked up the customer on code {display}.", seconds=6, highlight=False)

    def cancelled(self, routing: str) -> None:
        self.remove_code(routing)

    def cancel_failed(self, message: str) -> None:
        self._code_selected()
        self.flash(message, seconds=8)

    def remove_code(self, routing: str) -> None:
        self.codes.pop(routing, None)
        self._leave_queue(routing)
        if self.codes_list.exists(routing):
            self.codes_list.delete(routing)
        if self.shown == routing:
            self.shown = None
            self.code_text.configure(text="— — — — - — — —", fg="#999999")
            self.expiry.configure(text="Press New session for a code.")
            self.copy_button.configure(state="disabled")
        self._code_selected()

    def picked_up(self, routing: str) -> None:
        self._leave_queue(routing)
        self.set_state(routing, IN_SESSION)

    def pick_up_failed(self, routing: str, message: str) -> None:
        self.flash(message, seconds=8)

    def _leave_queue(self, routing: str) -> None:
        if self._banner_about == routing:
            self._hide_banner()
        self.teammates.pop(routing, None)
        if self.queue.pop(routing, None) is not None:
            if self.queue_list.exists(routing):
                self.queue_list.delete(routing)
            self._queue_selected()
            self.update_title()

    def update_title(self) -> None:
        waiting = len(self.queue)
        name = f"{TITLE} — {self.operator}"
        self.actions.set_title(f"({waiting}) {name}" if waiting else name)

    def flash(self, message: str, seconds: float = 8, highlight: bool = True, about: str | None = None) -> None:
        """A message above the lists for a while (C{about} a customer waiting on that code)."""
        if self._banner_timer is not None:
            self.after_cancel(self._banner_timer)
        self._banner_about = about
        self.banner.configure(text=message, bg=HIGHLIGHT if highlight else "#e3f2e1")
        self.banner.pack(fill="x", pady=(0, 6), after=self.code_box)
        self._banner_timer = self.after(int(seconds * 1000), self._hide_banner)

    def _hide_banner(self) -> None:
        if self._banner_timer is not None:
            self.after_cancel(self._banner_timer)
        self._banner_timer = None
        self._banner_about = None
        self.banner.pack_forget()

    def set_enabled(self, enabled: bool) -> None:
        """Allow or refuse new codes (while disconnected)."""
        for button in (self.new_button, self.team_button):
            button.configure(state="normal" if enabled else "disabled")

    # -- the clock ---------------------------------------------------------------------------

    def _tick(self) -> None:
        self._refresh()
        self._ticking = self.after(500, self._tick)

    def _refresh(self) -> None:
        now = self.clock()
        for routing, entry in list(self.codes.items()):
            state = entry["state"]
            left = entry["live"].expires_at - now
            if state == WAITING_FOR_CUSTOMER and left <= 0:
                # The gateway says so too (CodeTimedOut), but the operator should not wait for it.
                self.set_state(routing, EXPIRED)
                return
            expires = countdown(left) if state == WAITING_FOR_CUSTOMER else ""
            self.codes_list.item(routing, values=(entry["live"].display(), state, expires))
        for routing, since in self.queue.items():
            if self.queue_list.exists(routing):
                values = list(self.queue_list.item(routing, "values"))
                values[1] = countdown(now - since)
                self.queue_list.item(routing, values=values)
        entry = self.codes.get(self.shown)
        if entry is not None:
            state = entry["state"]
            if state == WAITING_FOR_CUSTOMER:
                text, colour = f"Expires in {countdown(entry['live'].expires_at - now)}", "#1b5e20"
            else:
                text, colour = state[0].upper() + state[1:], "#b00020" if state in FINISHED else "#0d47a1"
            self.expiry.configure(text=text)
            self.code_text.configure(fg="#999999" if state in FINISHED else "#111111")
            self.expiry.configure(foreground=colour)

