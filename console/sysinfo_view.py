"""
The customer's system information in readable tabs: overview (system,
processor, memory, users), processes, disks, network, packages (with a
filter) and logs, built from a L{wire.sysinfo.SystemInfo}.  Tables sort by
any column (click its heading).
"""

import time
import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from wire.sysinfo import SystemInfo

TABS = ("Overview", "Processes", "Disks", "Network", "Packages", "Logs")


def size(count: float) -> str:
    """A byte count for a person: C{1.5 GiB}."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def duration(seconds: float) -> str:
    """An uptime for a person: C{3 days 4 h 12 min}."""
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = ([f"{days} day{'s' if days != 1 else ''}"] if days else []) + ([f"{hours} h"] if days or hours else [])
    return " ".join(parts + [f"{minutes} min"])


def percent(part: float, whole: float) -> str:
    """C{part} of C{whole} in per cent (empty when there is no whole)."""
    return f"{100 * part / whole:.0f} %" if whole else ""


class Table(ttk.Frame):
    """A Treeview with scroll bars whose columns sort when their heading is clicked."""

    def __init__(self, parent, columns: tuple[tuple[str, str, int, bool], ...]):
        """C{columns}: (name, heading, width, numeric) each."""
        super().__init__(parent)
        self.numeric = {name: numeric for name, _, _, numeric in columns}
        self.tree = ttk.Treeview(self, columns=[c[0] for c in columns], show="headings", selectmode="browse")
        for name, heading, width, numeric in columns:
            self.tree.heading(name, text=heading, command=lambda n=name: self.sort(n))
            self.tree.column(name, width=width, anchor="e" if numeric else "w", stretch=not numeric)
        bar = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=bar.set)
        self.tree.pack(side="left", fill="both", expand=True)
        bar.pack(side="right", fill="y")
        self.keys: dict[str, dict[str, object]] = {}
        self._descending: dict[str, bool] = {}

    def fill(self, rows, sort_by: str | None = None, descending: bool = False) -> None:
        """
        Show C{rows}: (shown values, sort keys) each, both dicts by column
        name; sorted by C{sort_by} when given.
        """
        self.tree.delete(*self.tree.get_children())
        self.keys.clear()
        for shown, sort_keys in rows:
            item = self.tree.insert("", "end", values=[shown[c] for c in self.tree["columns"]])
            self.keys[item] = sort_keys
        if sort_by is not None:
            self._descending[sort_by] = not descending
            self.sort(sort_by)

    def sort(self, column: str) -> None:
        """Sort by C{column}; again to reverse."""
        descending = not self._descending.get(column, True)
        self._descending[column] = descending
        items = sorted(self.tree.get_children(), key=lambda i: self.keys[i][column], reverse=descending)
        for index, item in enumerate(items):
            self.tree.move(item, "", index)

    def rows(self) -> list[tuple]:
        """The values shown, in order."""
        return [tuple(self.tree.item(i, "values")) for i in self.tree.get_children()]


def _read_only_text(parent, **options) -> tk.Text:
    return tk.Text(parent, wrap="word", padx=10, pady=8, borderwidth=0, state="disabled", **options)


def _replace(text: tk.Text, fill) -> None:
    """Refill a read-only Text: C{fill(text)} inserts the new content."""
    text.configure(state="normal")
    text.delete("1.0", "end")
    fill(text)
    text.configure(state="disabled")


class SystemInfoView(ttk.Frame):
    """The system information tabs; C{refresh()} asks for (new) information (Tk thread)."""

    def __init__(self, parent, refresh):
        super().__init__(parent)
        self.refresh = refresh
        self.info: SystemInfo | None = None
        bar = ttk.Frame(self)
        bar.pack(fill="x", pady=(0, 4))
        self.refresh_button = ttk.Button(bar, text="Get system information (F5)", command=refresh)
        self.refresh_button.pack(side="left")
        self.refresh_button.bind("<Return>", lambda event: refresh())
        self.status = ttk.Label(bar, text="Needs the customer's permission to read system information.")
        self.status.pack(side="left", padx=10)

        self.tabs = ttk.Notebook(self)
        self.tabs.pack(fill="both", expand=True)
        self.overview = _read_only_text(self.tabs)
        heading = tkfont.nametofont("TkDefaultFont").copy()
        heading.configure(weight="bold", size=heading.cget("size") + 1)
        self.overview.tag_configure("heading", font=heading, spacing1=8, spacing3=2)
        self.overview.tag_configure("name", foreground="#555555")
        self.processes = Table(self.tabs, (("pid", "PID", 70, True), ("name", "Name", 240, False),
                                           ("user", "User", 120, False), ("cpu", "CPU", 70, True),
                                           ("memory", "Memory", 100, True)))
        self.disks = Table(self.tabs, (("mount", "Mounted on", 180, False), ("device", "Device", 180, False),
                                       ("filesystem", "Type", 80, False), ("total", "Size", 100, True),
                                       ("used", "Used", 100, True), ("free", "Free", 100, True),
                                       ("use", "Use", 60, True)))
        self.network = Table(self.tabs, (("name", "Interface", 140, False), ("state", "State", 70, False),
                                         ("addresses", "Addresses", 500, False)))
        packages = ttk.Frame(self.tabs)
        line = ttk.Frame(packages)
        line.pack(fill="x", pady=4)
        ttk.Label(line, text="Filter:").pack(side="left")
        self.filter = tk.StringVar()
        self.filter.trace_add("write", lambda *_: self._fill_packages())
        ttk.Entry(line, textvariable=self.filter, width=30).pack(side="left", padx=4)
        self.package_count = ttk.Label(line, text="")
        self.package_count.pack(side="left", padx=8)
        self.packages = Table(packages, (("name", "Package", 300, False), ("version", "Version", 300, False)))
        self.packages.pack(fill="both", expand=True)
        logs = ttk.Frame(self.tabs)
        self.logs = _read_only_text(logs, font="TkFixedFont")
        self.logs.configure(wrap="none")
        log_bar = ttk.Scrollbar(logs, orient="vertical", command=self.logs.yview)
        self.logs.configure(yscrollcommand=log_bar.set)
        self.logs.pack(side="left", fill="both", expand=True)
        log_bar.pack(side="right", fill="y")
        for name, page in zip(TABS, (self.overview, self.processes, self.disks, self.network, packages, logs)):
            self.tabs.add(page, text=name, padding=4)
        self.tabs.enable_traversal()

    def loading(self) -> None:
        """A request is on its way."""
        self.status.configure(text="Asking the customer's computer…")

    def show_problem(self, message: str) -> None:
        """The information could not be had."""
        self.status.configure(text=message)

    def show(self, info: SystemInfo) -> None:
        """Fill every tab from C{info}."""
        self.info = info
        self.status.configure(text=time.strftime("Received at %H:%M:%S.", time.localtime()))
        self._fill_overview(info)
        self.processes.fill(
            (({"pid": p.pid, "name": p.name, "user": p.user, "cpu": f"{p.cpu_percent:.1f} %",
               "memory": size(p.memory_bytes)},
              {"pid": p.pid, "name": p.name.lower(), "user": p.user, "cpu": p.cpu_percent, "memory": p.memory_bytes})
             for p in info.processes),
            sort_by="cpu", descending=True)
        self.disks.fill(
            (({"mount": d.mount, "device": d.device, "filesystem": d.filesystem, "total": size(d.total),
               "used": size(d.used), "free": size(d.total - d.used), "use": percent(d.used, d.total)},
              {"mount": d.mount, "device": d.device, "filesystem": d.filesystem, "total": d.total, "used": d.used,
               "free": d.total - d.used, "use": d.used / d.total if d.total else 0})
             for d in info.disks),
            sort_by="mount")
        self.network.fill(
            (({"name": n.name, "state": "up" if n.up else "down", "addresses": ", ".join(n.addresses)},
              {"name": n.name, "state": n.up, "addresses": n.addresses})
             for n in info.interfaces),
            sort_by="name")
        self._fill_packages()
        _replace(self.logs, lambda text: text.insert("1.0", "\n".join(info.log_lines) or "(no log lines)"))
        self.logs.see("end")

    def _fill_overview(self, info: SystemInfo) -> None:
        _replace(self.overview, lambda text: self._write_overview(text, info))

    @staticmethod
    def _write_overview(text: tk.Text, info: SystemInfo) -> None:
        def section(title, rows):
            text.insert("end", title + "\n", "heading")
            for name, value in rows:
                text.insert("end", f"{name}: ", "name")
                text.insert("end", f"{value}\n")

        memory, cpu = info.memory, info.cpu
        section("System", [("Computer name", info.hostname), ("Operating system", f"{info.os} {info.os_version}".strip()),
                           ("Up for", duration(info.uptime))])
        section("Processor", [("Model", cpu.model or "unknown"), ("Cores", cpu.cores), ("Busy", f"{cpu.percent:.0f} %")])
        section("Memory", [
            ("Installed", size(memory.total)),
            ("Available", f"{size(memory.available)} ({percent(memory.available, memory.total)})"),
            ("Swap", f"{size(memory.swap_used)} used of {size(memory.swap_total)}"),
        ])
        section("Logged in", [(u.name, f"on {u.terminal or '?'} since "
                               + time.strftime("%Y-%m-%d %H:%M", time.localtime(u.since))) for u in info.users]
                or [("Nobody", "")])
        section("In short", [("Processes", len(info.processes)), ("Disks", len(info.disks)),
                             ("Network interfaces", len(info.interfaces)), ("Packages", len(info.packages))])

    def _fill_packages(self) -> None:
        if self.info is None:
            return
        wanted = self.filter.get().strip().lower()
        shown = [p for p in self.info.packages if wanted in p.name.lower()]
        self.packages.fill((({"name": p.name, "version": p.version}, {"name": p.name.lower(), "version": p.version})
                            for p in shown), sort_by="name")
        self.package_count.configure(text=f"{len(shown)} of {len(self.info.packages)}")
