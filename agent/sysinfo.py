"""
The customer's system information (L{wire.sysinfo.SystemInfo}), gathered
with C{psutil}, C{platform} and what the system offers to read: the OS
release file, C{/proc/cpuinfo}, C{dpkg-query}, C{journalctl} or the
syslog file.

Every part is best effort: a part that cannot be read (not permitted, not
on this system, too slow) keeps its default and the reason is logged.
Collection runs in a thread; the reasons are logged back on the reactor
thread.  The lists are bounded so the whole fits the session's
C{BigJSON} limit (L{wire.session_commands.MAX_BIG_VALUE} compressed).
"""

import ipaddress
import json
import os
import platform
import shutil
import socket
import subprocess
import time
import zlib

import attrs
import psutil
from twisted.internet import threads
from zope.interface import implementer

from agent.interfaces import ISystemInfoSource
from wire import logs
from wire.session_commands import MAX_BIG_VALUE
from wire.sysinfo import (
    Cpu,
    Disk,
    Memory,
    NetworkInterface,
    Package,
    Process,
    SystemInfo,
    User,
    to_json,
)

# File systems that are not storage the customer cares about.
PSEUDO_FILESYSTEMS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
    "efivarfs", "fusectl", "fuse.gvfsd-fuse", "fuse.portal", "hugetlbfs", "mqueue", "nsfs", "proc",
    "pstore", "ramfs", "rpc_pipefs", "securityfs", "squashfs", "sysfs", "tmpfs", "tracefs",
})
MAX_DISKS = 100
MAX_INTERFACES = 100
MAX_USERS = 100
MAX_LINE = 500
SYSLOG = "/var/log/syslog"


@implementer(ISystemInfoSource)
class SystemInfoCollector:
    """
    Collects a L{SystemInfo} in a thread (L{collect}).

    @param top_processes: how many processes to take by CPU and by memory
        (the two lists are merged).
    @param max_packages: the most installed packages listed.
    @param max_log_lines: the most system log lines.
    @param budget: the most bytes the zlib-compressed JSON may take; the
        package, log and process lists are shortened until it fits.
    @param sample: seconds over which CPU use is measured.
    @param os_release, cpuinfo, syslog: files to read (default: the
        system's own; C{os_release} C{None} is what C{platform} finds).
    @param dpkg_query, journalctl: the programs to run, looked up on PATH.
    """

    log = logs.logger(__name__)

    def __init__(self, top_processes: int = 25, max_packages: int = 5000, max_log_lines: int = 200,
                 budget: int = MAX_BIG_VALUE * 3 // 4, sample: float = 0.3,
                 os_release: str | None = None, cpuinfo: str = "/proc/cpuinfo", syslog: str = SYSLOG,
                 dpkg_query: str = "dpkg-query", journalctl: str = "journalctl"):
        self.top_processes = top_processes
        self.max_packages = max_packages
        self.max_log_lines = max_log_lines
        self.budget = budget
        self.sample = sample
        self.os_release = os_release
        self.cpuinfo = cpuinfo
        self.syslog = syslog
        self.dpkg_query = dpkg_query
        self.journalctl = journalctl

    def collect(self):
        """A Deferred firing with the L{SystemInfo} (it never fails)."""
        d = threads.deferToThread(self.collect_now)

        def report(result):
            info, problems = result
            for part, problem in problems:
                self.log.info("system information: no {part}: {problem}", part=part, problem=problem)
            return info

        return d.addCallback(report)

    def collect_now(self) -> tuple[SystemInfo, list[tuple[str, str]]]:
        """
        Collect in the calling thread: the L{SystemInfo} and the parts
        that failed, as (part, reason) pairs.
        """
        problems = []
        fields = {}
        try:
            processes = self._prime_cpu()
        except Exception as e:
            processes = {}
            problems.append(("processes", _reason(e)))
        started = time.monotonic()
        for part, collect in (
            ("os", self._os),
            ("hostname", self._hostname),
            ("uptime", self._uptime),
            ("memory", self._memory),
            ("disks", self._disks),
            ("interfaces", self._interfaces),
            ("users", self._users),
            ("packages", self._packages),
            ("log_lines", self._log_lines),
        ):
            try:
                fields.update(collect())
            except Exception as e:
                problems.append((part, _reason(e)))
        # CPU use is measured since _prime_cpu: wait out the rest of the sample.
        time.sleep(max(0.0, self.sample - (time.monotonic() - started)))
        for part, collect in (("cpu", self._cpu), ("processes", lambda: self._processes(processes))):
            try:
                fields.update(collect())
            except Exception as e:
                problems.append((part, _reason(e)))
        info = SystemInfo(**fields)
        info, shortened = self._fit(info)
        if shortened:
            problems.append(("complete lists", f"shortened {shortened} to fit {self.budget} bytes"))
        return info, problems

    # -- the parts ---------------------------------------------------------------------------------

    def _os(self):
        release = {}
        try:
            if self.os_release is None:
                release = platform.freedesktop_os_release()
            else:
                release = _parse_os_release(self.os_release)
        except OSError:
            pass
        kernel = f"{platform.system()} {platform.release()}".strip()
        name = release.get("NAME") or platform.system()
        version = release.get("VERSION") or release.get("VERSION_ID") or ""
        os_version = f"{version}; {kernel}" if version else kernel
        return {"os": str(name), "os_version": os_version}

    def _hostname(self):
        return {"hostname": socket.gethostname() or platform.node()}

    def _uptime(self):
        return {"uptime": float(max(0.0, time.time() - psutil.boot_time()))}

    def _prime_cpu(self) -> dict:
        """Start measuring CPU use, of the machine and of each process; the processes by pid."""
        psutil.cpu_percent(interval=None)
        processes = {}
        for proc in psutil.process_iter():
            try:
                proc.cpu_percent(interval=None)
                processes[proc.pid] = proc
            except psutil.Error:
                pass
        return processes

    def _cpu(self):
        return {"cpu": Cpu(
            model=_cpu_model(self.cpuinfo),
            cores=int(psutil.cpu_count(logical=True) or 0),
            percent=float(psutil.cpu_percent(interval=None)),
        )}

    def _memory(self):
        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        return {"memory": Memory(
            total=int(memory.total), available=int(memory.available),
            swap_total=int(swap.total), swap_used=int(swap.used),
        )}

    def _disks(self):
        disks, seen = [], set()
        for part in psutil.disk_partitions(all=False):
            if part.fstype in PSEUDO_FILESYSTEMS or part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue
            disks.append(Disk(mount=part.mountpoint, device=part.device, filesystem=part.fstype,
                              total=int(usage.total), used=int(usage.used)))
            if len(disks) == MAX_DISKS:
                break
        return {"disks": tuple(disks)}

    def _interfaces(self):
        stats = psutil.net_if_stats()
        interfaces = []
        for name, addresses in sorted(psutil.net_if_addrs().items()):
            shown = tuple(
                _address(a.address, a.netmask)
                for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6)
            )
            up = bool(stats[name].isup) if name in stats else False
            interfaces.append(NetworkInterface(name=name, addresses=shown, up=up))
        return {"interfaces": tuple(interfaces[:MAX_INTERFACES])}

    def _users(self):
        return {"users": tuple(
            User(name=u.name or "", terminal=u.terminal or u.host or "", since=float(u.started or 0.0))
            for u in psutil.users()[:MAX_USERS]
        )}

    def _processes(self, processes: dict):
        rows = []
        for pid, proc in processes.items():
            try:
                with proc.oneshot():
                    cpu = float(proc.cpu_percent(interval=None))
                    memory = int(proc.memory_info().rss)
                    name = proc.name()
                    try:
                        user = proc.username()
                    except (psutil.AccessDenied, KeyError):
                        user = ""
            except psutil.Error:
                continue  # gone, or not ours to read
            rows.append(Process(pid=int(pid), name=name, user=user, cpu_percent=cpu, memory_bytes=memory))
        if not rows:
            raise RuntimeError("no process could be read")
        by_cpu = sorted(rows, key=lambda p: (-p.cpu_percent, -p.memory_bytes))[: self.top_processes]
        by_memory = sorted(rows, key=lambda p: -p.memory_bytes)[: self.top_processes]
        merged = {p.pid: p for p in by_cpu + by_memory}
        return {"processes": tuple(sorted(merged.values(), key=lambda p: (-p.cpu_percent, -p.memory_bytes)))}

    def _packages(self):
        dpkg = shutil.which(self.dpkg_query)
        if dpkg is None:
            raise LookupError(f"no {self.dpkg_query} on this system")
        done = subprocess.run(
            [dpkg, "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n"],
            capture_output=True, text=True, errors="replace", timeout=20, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dpkg-query failed: {done.stderr.strip()[:200]}")
        packages = []
        for line in done.stdout.splitlines():
            status, _, rest = line.partition("\t")
            name, _, version = rest.partition("\t")
            if status.strip() == "ii" and name:
                packages.append(Package(name=name, version=version))
                if len(packages) == self.max_packages:
                    break
        return {"packages": tuple(packages)}

    def _log_lines(self):
        reasons = []
        journalctl = shutil.which(self.journalctl)
        if journalctl is not None:
            try:
                done = subprocess.run(
                    [journalctl, "-n", str(self.max_log_lines), "--no-pager", "-q", "-o", "short-iso"],
                    capture_output=True, text=True, errors="replace", timeout=20, stdin=subprocess.DEVNULL,
                )
                lines = done.stdout.splitlines()
                if done.returncode == 0 and lines:
                    return {"log_lines": _bounded_lines(lines, self.max_log_lines)}
                reasons.append(f"journalctl: {done.stderr.strip()[:200] or 'nothing readable'}")
            except (OSError, subprocess.SubprocessError) as e:
                reasons.append(f"journalctl: {_reason(e)}")
        try:
            lines = _tail(self.syslog, self.max_log_lines)
            if lines:
                return {"log_lines": _bounded_lines(lines, self.max_log_lines)}
            reasons.append(f"{self.syslog} is empty")
        except OSError as e:
            reasons.append(f"{self.syslog}: {_reason(e)}")
        raise LookupError("; ".join(reasons))

    # -- fitting the limit --------------------------------------------------------------------------

    def _fit(self, info: SystemInfo) -> tuple[SystemInfo, str]:
        """C{info} with its longest lists halved until it fits the budget, and what was shortened."""
        shortened = []
        for field in ("packages", "log_lines", "processes"):
            while _compressed_size(info) > self.budget and getattr(info, field):
                items = getattr(info, field)
                info = _replace(info, field, items[: len(items) // 2])
                if field not in shortened:
                    shortened.append(field)
        return info, ", ".join(shortened)


def _replace(info, field, value):
    return attrs.evolve(info, **{field: value})


def _compressed_size(info: SystemInfo) -> int:
    """The size the session's BigJSON argument will give it."""
    return len(zlib.compress(json.dumps(to_json(info)).encode("utf-8")))


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:300]


def _parse_os_release(path: str) -> dict:
    values = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, value = line.strip().partition("=")
            if sep and name and not name.startswith("#"):
                values[name] = value.strip().strip("\"'")
    return values


def _cpu_model(path: str) -> str:
    """The processor's name from /proc/cpuinfo where readable, else what C{platform} says."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                name, sep, value = line.partition(":")
                if sep and name.strip() in ("model name", "Hardware", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _address(address: str, netmask: str | None) -> str:
    """An address with its prefix length when known: C{192.168.1.5/24}."""
    address = address.split("%", 1)[0]
    if not netmask:
        return address
    try:
        prefix = bin(int(ipaddress.ip_address(netmask.split("/", 1)[0]))).count("1")
    except ValueError:
        return address
    return f"{address}/{prefix}"


def _tail(path: str, count: int, chunk: int = 256 * 1024) -> list[str]:
    """The last C{count} lines of a file (reading at most its last C{chunk} bytes)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - chunk))
        data = f.read()
    lines = data.decode("utf-8", "replace").splitlines()
    if size > chunk:
        lines = lines[1:]  # the first one is cut
    return lines[-count:]


def _bounded_lines(lines: list[str], count: int) -> tuple[str, ...]:
    return tuple(line[:MAX_LINE] for line in lines[-count:])
