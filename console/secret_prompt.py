"""
Picking up a teammate's team code: the last part of a code is only in the
console that made it and with the customer, so the operator asks the
customer to read it out (their Ponte window shows it) and types it here.
"""

import tkinter as tk
from tkinter import ttk

from console.desk import read_out_code
from wire import codes


class SecretPrompt(tk.Toplevel):
    """
    A small dialog: the code's first part is shown, the operator types the
    rest; C{on_done(text)} gets what they typed once it makes a code.
    Return is OK, Escape cancels.
    """

    def __init__(self, parent, routing: str, created_by: str, on_done):
        super().__init__(parent)
        self.routing = routing
        self.on_done = on_done
        self.title(f"Pick up code {routing}")
        self.transient(parent.winfo_toplevel())
        self.resizable(False, False)
        body = ttk.Frame(self, padding=16)
        body.pack(fill="both", expand=True)
        ttk.Label(
            body, wraplength=380, justify="left",
            text=f"{created_by} made this code for the team, so this console does not know its last part. "
                 "Ask the customer to read you the code their Ponte window shows, and type what comes after "
                 f"{routing}.",
        ).grid(row=0, column=0, columnspan=3, sticky="w", pady=(0, 10))
        ttk.Label(body, text=f"{routing} -", font=("TkFixedFont", 18, "bold")).grid(row=1, column=0, sticky="w")
        self.secret = tk.StringVar()
        self.entry = ttk.Entry(body, textvariable=self.secret, width=10, font=("TkFixedFont", 18, "bold"))
        self.entry.grid(row=1, column=1, sticky="w", padx=(6, 0))
        self.message = ttk.Label(body, text="", foreground="#b00020", wraplength=380, justify="left")
        self.message.grid(row=2, column=0, columnspan=3, sticky="w", pady=(6, 0))
        buttons = ttk.Frame(body)
        buttons.grid(row=3, column=0, columnspan=3, sticky="e", pady=(10, 0))
        ttk.Button(buttons, text="Cancel", command=self.destroy).pack(side="right")
        ttk.Button(buttons, text="Pick up", underline=0, command=self.submit).pack(side="right", padx=(0, 6))
        self.bind("<Return>", lambda event: self.submit())
        self.bind("<Escape>", lambda event: self.destroy())
        self.bind("<Alt-p>", lambda event: self.submit())
        self.entry.focus_set()

    def submit(self) -> None:
        """Pick up with what was typed, or say what is wrong with it."""
        typed = self.secret.get()
        try:
            read_out_code(self.routing, typed)
        except codes.InvalidCode as e:
            self.message.configure(text=f"That is not it: {e}.")
            self.entry.focus_set()
            return
        self.destroy()
        self.on_done(typed)
