"""The second window: who is waiting, the terms, and Accept or Decline."""

import tkinter as tk
import webbrowser
from tkinter import ttk

import attrs


@attrs.frozen
class WhoIsWaiting:
    """What the gateway said about the code (C{Lookup})."""

    operator_name: str
    organisation: str
    terms_text: str
    terms_version: str
    privacy_url: str


class TermsFrame(ttk.Frame):
    """Shows who waits and the terms; nothing connects to the operator before Accept."""

    def __init__(self, parent, who: WhoIsWaiting, on_accept, on_decline):
        super().__init__(parent, padding=20)
        heading = tk.Text(self, height=2, width=48, wrap="word", borderwidth=0, highlightthickness=0,
                          background=ttk.Style(self).lookup("TFrame", "background"), font=("TkDefaultFont", 12))
        heading.tag_configure("bold", font=("TkDefaultFont", 12, "bold"))
        heading.insert("end", "Start a support session with ")
        heading.insert("end", who.operator_name, "bold")
        heading.insert("end", " of ")
        heading.insert("end", who.organisation, "bold")
        heading.insert("end", "?")
        heading.configure(state="disabled", takefocus=0)
        heading.pack(anchor="w", fill="x")
        ttk.Label(
            self,
            text="They will only see or do what you allow, one thing at a time. You can stop at any moment.",
            wraplength=440, justify="left",
        ).pack(anchor="w", pady=(6, 10))
        ttk.Label(self, text=f"Terms of use (version {who.terms_version})").pack(anchor="w")
        box = ttk.Frame(self)
        box.pack(fill="both", expand=True, pady=4)
        text = tk.Text(box, height=10, width=60, wrap="word", relief="solid", borderwidth=1)
        scroll = ttk.Scrollbar(box, orient="vertical", command=text.yview)
        text.configure(yscrollcommand=scroll.set)
        text.insert("1.0", who.terms_text or "No terms were given.")
        text.configure(state="disabled", takefocus=0)
        text.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        if who.privacy_url:
            link = ttk.Label(self, text="Privacy policy (opens your browser)", foreground="#0645ad", cursor="hand2")
            link.pack(anchor="w", pady=(4, 0))
            link.bind("<Button-1>", lambda event: webbrowser.open(who.privacy_url))
        buttons = ttk.Frame(self)
        buttons.pack(anchor="e", pady=(12, 0))
        self.decline = ttk.Button(buttons, text="Decline", underline=0, command=on_decline)
        self.decline.pack(side="left", padx=6)
        self.accept = ttk.Button(buttons, text="Accept", underline=0, command=on_accept, default="active")
        self.accept.pack(side="left")
        top = self.winfo_toplevel()
        top.bind("<Alt-a>", lambda event: self.accept.invoke())
        top.bind("<Alt-d>", lambda event: self.decline.invoke())
        top.bind("<Escape>", lambda event: self.decline.invoke())
        self.accept.focus_set()
        self.accept.bind("<Return>", lambda event: self.accept.invoke())
