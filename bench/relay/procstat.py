"""
What the benchmark reads about a process from C{/proc}: CPU time and
resident memory.  Linux only, no third-party modules.
"""

import os
import resource

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by process C{pid} (all threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        text = f.read()
    # The command name (field 2) may hold spaces: count fields after its ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of process C{pid} in KiB (C{VmRSS})."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_nofile(wanted: int) -> int:
    """
    Raise this process's open-file limit to C{wanted} (or the hard limit if
    lower); child processes inherit it.  Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def all_cpu_seconds() -> dict[int, float]:
    """CPU seconds used so far by every process on the machine, by pid."""
    used = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                used[int(entry)] = cpu_seconds(int(entry))
            except (OSError, ValueError, IndexError):
                pass  # gone meanwhile
    return used


class OtherLoad:
    """
    How much CPU processes other than C{ours} used between two moments:
    other work on the machine skews a benchmark, so the run reports it.
    """

    def __init__(self, ours: set[int]):
        self._ours = ours
        self._before = all_cpu_seconds()

    def seconds(self) -> float:
        """CPU seconds used by the others since this was made."""
        after = all_cpu_seconds()
        return sum(
            used - self._before.get(pid, 0.0) for pid, used in after.items() if pid not in self._ours
        )
