"""The first window: the customer types the code the operator gave them."""

import tkinter as tk
from tkinter import ttk

from wire import codes

TITLE = "Ponte — remote support"


def tidy(text: str, routing_length: int, total: int) -> tuple[str, str | None]:
    """
    What the entry should show for C{text} typed so far (upper case, a dash
    after the routing part, at most C{total} characters), and a hint about
    a character that cannot be part of a code.
    """
    kept, hint = [], None
    for char in text.upper():
        if char in " -\t":
            continue
        try:
            kept.append(codes.normalise(char))
        except codes.InvalidCode:
            hint = f"“{char}” is not used in codes: they have letters and digits only (no U)."
    code = "".join(kept)[:total]
    shown = code if len(code) <= routing_length else f"{code[:routing_length]}-{code[routing_length:]}"
    return shown, hint


class CodeFrame(ttk.Frame):
    """Asks for the code; C{on_submit(code)} gets the normalised code."""

    def __init__(self, parent, routing_length: int, secret_length: int, on_submit):
        super().__init__(parent, padding=24)
        self.routing_length = routing_length
        self.total = routing_length + secret_length
        self.on_submit = on_submit
        ttk.Label(self, text="Enter the code your operator gave you", font=("TkDefaultFont", 13, "bold")).pack(anchor="w")
        example = "X" * routing_length + "-" + "X" * secret_length
        ttk.Label(self, text=f"It has {self.total} letters and digits, like {example}.").pack(anchor="w", pady=(4, 12))
        self.text = tk.StringVar()
        self.entry = ttk.Entry(self, textvariable=self.text, font=("TkFixedFont", 22), width=self.total + 2, justify="center")
        self.entry.pack(pady=4)
        self.entry.bind("<Return>", lambda event: self.submit())
        self.text.trace_add("write", self._typed)
        self.button = ttk.Button(self, text="Connect", command=self.submit)
        self.button.pack(pady=(12, 4))
        self.message = ttk.Label(self, text="", foreground="#b00020", wraplength=360, justify="left")
        self.message.pack(anchor="w", pady=(8, 0))
        self._countdown = None
        self.entry.focus_set()

    def _typed(self, *_):
        shown, hint = tidy(self.text.get(), self.routing_length, self.total)
        if shown != self.text.get():
            self.text.set(shown)
            # After Tk's own key binding has placed the cursor.
            self.after_idle(self.entry.icursor, "end")
        self.message.configure(text=hint or "")

    def code(self) -> str:
        """The code typed so far, normalised."""
        return self.text.get().replace("-", "")

    def submit(self) -> None:
        if str(self.button["state"]) == "disabled":
            return
        code = self.code()
        if len(code) != self.total:
            self.show_error(f"The code has {self.total} characters; this one has {len(code)}.")
            return
        self.set_busy(True)
        self.message.configure(text="Looking up the code…", foreground="#333333")
        self.on_submit(code)

    def set_busy(self, busy: bool) -> None:
        """Disable the entry while the code is looked up."""
        state = "disabled" if busy else "normal"
        self.button.configure(state=state)
        self.entry.configure(state=state)

    def show_error(self, message: str, retry_after: int | None = None) -> None:
        """Show why the code did not work; with C{retry_after}, count down before allowing another try."""
        if self._countdown is not None:
            self.after_cancel(self._countdown)
            self._countdown = None
        self.message.configure(text=message, foreground="#b00020")
        if retry_after:
            self._count_down(message, retry_after)
        else:
            self.set_busy(False)
            self.entry.focus_set()

    def _count_down(self, message: str, seconds: int) -> None:
        if seconds <= 0:
            self.set_busy(False)
            self.message.configure(text="You can try again now.")
            self._countdown = None
            return
        self.set_busy(True)
        self.message.configure(text=message.rsplit("try again in", 1)[0] + f"try again in {seconds} seconds.")
        self._countdown = self.after(1000, self._count_down, message, seconds - 1)
