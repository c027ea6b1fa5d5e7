"""
The customer's command prompt in the session window: a VT100/xterm
emulator (C{pyte}) whose screen is drawn into a Tk Text in a fixed-width
font, with colours, bold, underline, reverse video and the cursor.  Keys
become the bytes a terminal sends; resizing the view resizes the
customer's pseudo-terminal.
"""

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

import pyte

from console import keys

# DEC private mode 1 (application cursor keys) as pyte stores private modes.
DECCKM = 1 << 5
FOREGROUND = "#d0d0d0"
BACKGROUND = "#101010"
PALETTE = {
    "black": "#000000", "red": "#cd3131", "green": "#0dbc79", "brown": "#e5e510", "blue": "#2472c8",
    "magenta": "#bc3fbc", "cyan": "#11a8cd", "white": "#e5e5e5",
    "brightblack": "#666666", "brightred": "#f14c4c", "brightgreen": "#23d18b", "brightbrown": "#f5f543",
    "brightblue": "#3b8eea", "brightmagenta": "#d670d6", "brightcyan": "#29b8db", "brightwhite": "#ffffff",
}
# Output fed to the emulator per turn of the Tk loop, so that a flood of
# output never freezes the window.
FEED_BYTES = 64 * 1024


def colour(name: str, default: str) -> str:
    """A Tk colour for one of pyte's colour names (a palette name, 6 hex digits or C{default})."""
    if name in PALETTE:
        return PALETTE[name]
    if len(name) == 6:
        try:
            int(name, 16)
            return "#" + name
        except ValueError:
            pass
    return default


class _Screen(pyte.Screen):
    """A pyte screen whose answers to the program's queries (cursor position, device attributes) go back to it."""

    def __init__(self, columns: int, rows: int, answer):
        super().__init__(columns, rows)
        self._answer = answer

    def write_process_input(self, data: str) -> None:
        self._answer(data.encode("utf-8"))


class TerminalView(ttk.Frame):
    """
    A terminal.  C{open_shell(columns, rows)}, C{send(data)},
    C{resize(columns, rows)} and C{close_shell()} are the callbacks (Tk
    thread); the window calls L{opened}, L{feed}, L{exited} and
    L{problem}.  F8 gives the keyboard back to the window.
    """

    def __init__(self, parent, open_shell, send, resize, close_shell, columns: int = 80, rows: int = 24):
        super().__init__(parent)
        self.open_shell = open_shell
        self.send = send
        self.resize_callback = resize
        self.close_shell = close_shell
        self.running = False
        self.exit_text = ""
        self.screen = _Screen(columns, rows, self._answer)
        self.stream = pyte.ByteStream(self.screen)
        self._pending = bytearray()
        self._processing = None
        self._resizing = None
        self._tags: set[str] = set()

        bar = ttk.Frame(self)
        bar.pack(fill="x", pady=(0, 4))
        self.open_button = ttk.Button(bar, text="Open command prompt", underline=0, command=self.open)
        self.open_button.pack(side="left")
        self.open_button.bind("<Return>", lambda event: self.open())
        self.close_button = ttk.Button(bar, text="End command prompt", command=self.close_shell, state="disabled")
        self.close_button.pack(side="left", padx=4)
        self.paste_button = ttk.Button(bar, text="Paste", command=self.paste_clipboard, state="disabled")
        self.paste_button.pack(side="left")
        self.status = ttk.Label(bar, text="Not started. Needs the customer's permission for a command prompt.")
        self.status.pack(side="left", padx=10)

        base = tkfont.nametofont("TkFixedFont")
        self.font = base.copy()
        self.font.configure(size=max(abs(base.cget("size")), 11))
        self.bold = self.font.copy()
        self.bold.configure(weight="bold")
        self.text = tk.Text(
            self, width=columns, height=rows, wrap="none", font=self.font, foreground=FOREGROUND,
            background=BACKGROUND, insertwidth=0, padx=4, pady=4, borderwidth=0, highlightthickness=2,
            highlightcolor="#1565c0", highlightbackground=BACKGROUND, takefocus=1, cursor="xterm",
            selectbackground="#44475a", exportselection=True, undo=False,
        )
        self.text.pack(fill="both", expand=True)
        self.text.tag_configure("cursor", background="#d0d0d0", foreground="#101010")
        self._blank()
        self.text.bind("<KeyPress>", self._key)
        self.text.bind("<Configure>", self._configured)
        for virtual in ("<<Paste>>", "<<PasteSelection>>", "<<Cut>>", "<<Clear>>"):
            self.text.bind(virtual, lambda event: "break")
        self.text.bind("<ButtonRelease-2>", self._paste_selection)

    # -- what the window reports ------------------------------------------------------------------

    def open(self) -> None:
        """Ask for a shell of the view's size."""
        if not self.running:
            self.status.configure(text="Starting…")
            if self.text.winfo_ismapped():
                self._resize()  # the size the view has now, not the one it had
            self.open_shell(self.screen.columns, self.screen.lines)

    def opened(self) -> None:
        """The shell runs: keys go to it."""
        self.running = True
        self.exit_text = ""
        self.screen.reset()
        self._blank()
        self.status.configure(text="Running. Keys go to the customer's shell; F8 leaves the terminal.")
        self.open_button.configure(state="disabled")
        self.close_button.configure(state="normal")
        self.paste_button.configure(state="normal")
        self.text.focus_set()

    def problem(self, message: str) -> None:
        """Opening (or typing into) the shell failed."""
        self.status.configure(text=message)

    def feed(self, data: bytes) -> None:
        """Output of the shell (Tk thread); drawn soon, a slice at a time."""
        self._pending += data
        if self._processing is None:
            self._processing = self.after(5, self._process)

    def exited(self, status: int | None, signal: int | None) -> None:
        """The shell ended."""
        self._process_all()
        self.running = False
        if signal is not None:
            self.exit_text = f"The command prompt ended (killed by signal {signal})."
        else:
            self.exit_text = f"The command prompt ended (exit status {status})."
        self.status.configure(text=self.exit_text)
        self.open_button.configure(state="normal")
        self.close_button.configure(state="disabled")
        self.paste_button.configure(state="disabled")
        self.text.tag_remove("cursor", "1.0", "end")

    def stop(self, reason: str) -> None:
        """The session ended: no more input."""
        self.running = False
        self.status.configure(text=self.exit_text or reason)
        for button in (self.open_button, self.close_button, self.paste_button):
            button.configure(state="disabled")

    def display(self) -> list[str]:
        """The emulator's screen, line by line."""
        self._process_all()
        return list(self.screen.display)

    # -- output -------------------------------------------------------------------------------------

    def _process(self) -> None:
        self._processing = None
        chunk = bytes(self._pending[:FEED_BYTES])
        del self._pending[:FEED_BYTES]
        self.stream.feed(chunk)
        if self._pending:
            self._processing = self.after(1, self._process)
        self._render()

    def _process_all(self) -> None:
        if self._processing is not None:
            self.after_cancel(self._processing)
            self._processing = None
        if self._pending:
            self.stream.feed(bytes(self._pending))
            self._pending.clear()
            self._render()

    def _blank(self) -> None:
        self.text.delete("1.0", "end")
        self.text.insert("1.0", "\n".join(" " * self.screen.columns for _ in range(self.screen.lines)))
        self.screen.dirty.update(range(self.screen.lines))

    def _render(self) -> None:
        screen = self.screen
        for y in sorted(screen.dirty):
            if y >= screen.lines:
                continue
            line = screen.buffer[y]
            runs = []
            text, style = [], None
            for x in range(screen.columns):
                char = line[x]
                if char.data == "":
                    continue  # the right half of a wide character
                this = self._style(char)
                if this != style and text:
                    runs += ["".join(text), style]
                    text = []
                style = this
                text.append(char.data)
            if text:
                runs += ["".join(text), style]
            self.text.delete(f"{y + 1}.0", f"{y + 1}.end")
            if runs:
                self.text.insert(f"{y + 1}.0", *runs)
        screen.dirty.clear()
        self.text.tag_remove("cursor", "1.0", "end")
        if self.running and not screen.cursor.hidden:
            at = f"{screen.cursor.y + 1}.{screen.cursor.x}"
            self.text.tag_add("cursor", at)
        self.text.tag_raise("cursor")
        self.text.tag_raise("sel")

    def _style(self, char) -> str:
        """The Text tag drawing C{char}'s attributes (made on first use)."""
        fg = colour(char.fg, FOREGROUND)
        bg = colour(char.bg, BACKGROUND)
        if char.reverse:
            fg, bg = bg, fg
        name = f"{fg}{bg}{'b' if char.bold else ''}{'u' if char.underscore else ''}"
        if name not in self._tags:
            self._tags.add(name)
            self.text.tag_configure(name, foreground=fg, background=bg, underline=bool(char.underscore),
                                    font=self.bold if char.bold else self.font)
            self.text.tag_lower(name)
        return name

    def tag_colours(self, line: int, column: int) -> tuple[str, str]:
        """The colours drawn at a place of the screen (0-based): foreground and background."""
        for name in self.text.tag_names(f"{line + 1}.{column}"):
            if name in self._tags:
                return self.text.tag_cget(name, "foreground"), self.text.tag_cget(name, "background")
        return FOREGROUND, BACKGROUND

    # -- input ---------------------------------------------------------------------------------------

    def _answer(self, data: bytes) -> None:
        if self.running:
            self.send(data)

    def _key(self, event):
        if event.keysym == keys.MENU_KEY:
            self.winfo_toplevel().focus_set()
            return "break"
        if event.state & keys.CONTROL and event.state & keys.SHIFT and event.keysym in ("V", "v"):
            self.paste_clipboard()
            return "break"
        if event.state & keys.CONTROL and event.state & keys.SHIFT and event.keysym in ("C", "c"):
            self.text.event_generate("<<Copy>>")
            return "break"
        if not self.running:
            return "break" if event.keysym not in ("Tab", "ISO_Left_Tab") else None
        data = keys.terminal_bytes(event.keysym, event.char, event.state, DECCKM in self.screen.mode)
        if data:
            self.send(data)
        return "break"

    def paste_clipboard(self) -> None:
        """Type the console's clipboard into the shell."""
        try:
            self._paste(self.clipboard_get())
        except tk.TclError:
            pass

    def _paste_selection(self, event):
        try:
            self._paste(self.selection_get(selection="PRIMARY"))
        except tk.TclError:
            pass
        return "break"

    def _paste(self, text: str) -> None:
        if self.running and text:
            self.send(text.replace("\r\n", "\r").replace("\n", "\r").encode("utf-8"))

    # -- size ----------------------------------------------------------------------------------------

    def _configured(self, event) -> None:
        if self._resizing is not None:
            self.after_cancel(self._resizing)
        self._resizing = self.after(150, self._resize)

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """Columns and rows that fit C{width} × C{height} pixels of the Text."""
        inner = 2 * (int(self.text.cget("padx")) + int(self.text.cget("borderwidth"))
                     + int(self.text.cget("highlightthickness")))
        columns = (width - inner) // max(1, self.font.measure("0"))
        rows = (height - inner) // max(1, self.font.metrics("linespace"))
        return max(columns, 10), max(rows, 3)

    def _resize(self) -> None:
        if self._resizing is not None:
            self.after_cancel(self._resizing)
        self._resizing = None
        columns, rows = self.size_for(self.text.winfo_width(), self.text.winfo_height())
        if (columns, rows) == (self.screen.columns, self.screen.lines):
            return
        self._process_all()
        self.screen.resize(rows, columns)
        self.text.delete("1.0", "end")
        self.text.insert("1.0", "\n".join(" " * columns for _ in range(rows)))
        self.screen.dirty.update(range(rows))
        self._render()
        if self.running:
            self.resize_callback(columns, rows)
