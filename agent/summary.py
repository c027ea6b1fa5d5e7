"""The last window: what happened in the session, save the log, rate it, close."""

import tkinter as tk
from tkinter import filedialog, ttk

from agent.session_log import SessionLog


class SummaryFrame(ttk.Frame):
    """
    Shows a L{SessionLog}.  C{on_close(stars, comment)} is called once,
    with C{stars=None} when the customer closes without rating.
    """

    def __init__(self, parent, log: SessionLog, on_close):
        super().__init__(parent, padding=16)
        self.log = log
        self.on_close = on_close
        ttk.Label(self, text="The support session has ended", font=("TkDefaultFont", 13, "bold")).pack(anchor="w")
        ttk.Label(self, text=f"{log.reason}", wraplength=460, justify="left").pack(anchor="w")
        ttk.Label(self, text=f"With {log.operator} of {log.organisation}, {log.duration()}.").pack(anchor="w", pady=(4, 8))
        text = tk.Text(self, height=12, width=70, wrap="word", relief="solid", borderwidth=1)
        text.insert("1.0", self._details())
        text.configure(state="disabled", takefocus=0)
        text.pack(fill="both", expand=True)
        ttk.Button(self, text="Save session log…", underline=0, command=self.save).pack(anchor="w", pady=(6, 10))
        self.saved = ttk.Label(self, text="")
        self.saved.pack(anchor="w")

        rating = ttk.LabelFrame(self, text=f"How did {log.operator} do? (optional, sent to them)", padding=8)
        rating.pack(fill="x")
        self.stars = tk.IntVar(value=0)
        row = ttk.Frame(rating)
        row.pack(anchor="w")
        for n in range(1, 6):
            ttk.Radiobutton(row, text=f"{n} ★", variable=self.stars, value=n).pack(side="left", padx=2)
        ttk.Label(rating, text="Comment:").pack(anchor="w", pady=(6, 0))
        self.comment = tk.StringVar()
        ttk.Entry(rating, textvariable=self.comment, width=60).pack(fill="x")
        buttons = ttk.Frame(self)
        buttons.pack(anchor="e", pady=(10, 0))
        ttk.Button(buttons, text="Close", underline=0, command=lambda: self.close(rate=False)).pack(side="left", padx=6)
        self.send = ttk.Button(buttons, text="Send rating and close", command=lambda: self.close(rate=True))
        self.send.pack(side="left")
        top = self.winfo_toplevel()
        top.bind("<Alt-s>", lambda event: self.save())
        top.bind("<Alt-c>", lambda event: self.close(rate=False))
        for n in range(1, 6):
            top.bind(str(n), lambda event, n=n: self.stars.set(n) if event.widget.winfo_class() != "TEntry" else None)
        self._closed = False

    def _details(self) -> str:
        return self.log.to_text().split("\n", 4)[-1].lstrip("\n")

    def save(self) -> None:
        path = filedialog.asksaveasfilename(
            parent=self, title="Save session log", defaultextension=".txt",
            initialfile="ponte-session.txt", filetypes=[("Text", "*.txt")],
        )
        if path:
            text_path, json_path = self.log.save(path)
            self.saved.configure(text=f"Saved {text_path} and {json_path}")

    def close(self, rate: bool) -> None:
        if self._closed:
            return
        self._closed = True
        stars = self.stars.get() if rate and self.stars.get() else None
        self.on_close(stars, self.comment.get().strip())

