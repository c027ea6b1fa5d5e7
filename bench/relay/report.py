"""
The final summary: one row per metric with the three paths, the gateway's
ratios to haproxy and to direct, and the issue's target with PASS or MISS.
"""

import attrs

from bench.relay.idle import IdleMemory
from bench.relay.measure import Samples, median

GATEWAY, HAPROXY, DIRECT = "gateway", "haproxy", "direct"


@attrs.frozen
class Target:
    """A target of the issue: C{value} compared with C{limit} by C{kind}."""

    text: str
    kind: str  # "min" (value >= limit) or "max" (value <= limit)
    limit: float

    def met(self, value: float | None) -> bool | None:
        """Whether C{value} meets the target (C{None} if it was not measured)."""
        if value is None:
            return None
        return value >= self.limit if self.kind == "min" else value <= self.limit


@attrs.frozen
class Row:
    """One metric: values per path, and which value the target judges."""

    label: str
    number_format: str
    values: dict
    target: Target | None = None
    judged: str = ""  # "haproxy" (ratio gw/haproxy), "value" (gateway's value) or ""

    def ratio(self, other: str) -> float | None:
        """The gateway's value over C{other}'s."""
        gateway, base = self.values.get(GATEWAY), self.values.get(other)
        return gateway / base if gateway is not None and base else None

    def verdict(self) -> tuple[float | None, bool | None]:
        """The judged number and whether it meets the target."""
        if self.target is None:
            return None, None
        value = self.ratio(HAPROXY) if self.judged == "haproxy" else self.values.get(GATEWAY)
        return value, self.target.met(value)


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def rows(samples: dict[str, Samples], idle: dict[str, IdleMemory]) -> list[Row]:
    """The summary's rows from what was measured."""

    def each(function) -> dict:
        return {name: function(s) for name, s in samples.items()}

    p50 = each(lambda s: s.trip(0.5))
    relays = {n: s for n, s in samples.items() if n != DIRECT}
    return [
        Row("connection setup, median (ms)", "{:.1f}", each(lambda s: median(s.setups))),
        Row("throughput one way (MB/s)", "{:.1f}", each(lambda s: s.one_way.median()),
            Target(">= 0.8 x haproxy", "min", 0.8), "haproxy"),
        Row("throughput both ways (MB/s)", "{:.1f}", each(lambda s: s.two_way.median())),
        Row("relay CPU one way (s per GB)", "{:.2f}",
            {n: s.one_way.cpu_per_gb() for n, s in relays.items()},
            Target("<= 1.3 x haproxy", "max", 1.3), "haproxy"),
        Row("relay CPU both ways (s per GB)", "{:.2f}",
            {n: s.two_way.cpu_per_gb() for n, s in relays.items()}),
        Row("64 B round trip p50 (µs)", "{:.0f}", p50),
        Row("64 B round trip p99 (µs)", "{:.0f}", each(lambda s: s.trip(0.99))),
        Row("added round trip over direct p50 (µs)", "{:.0f}",
            {n: _difference(p50[n], p50.get(DIRECT)) for n in relays},
            Target("<= 200 µs", "max", 200.0), "value"),
        Row("memory per idle paired session (KiB)", "{:.1f}",
            {n: m.per_session_kib for n, m in idle.items()},
            Target("<= 64 KiB", "max", 64.0), "value"),
    ]


def _cell(fmt: str, value) -> str:
    return "-" if value is None else fmt.format(value)


def _result(row: Row) -> str:
    if row.target is None:
        return ""
    return {True: "PASS", False: "MISS", None: "NOT MEASURED"}[row.verdict()[1]]


def table(all_rows: list[Row]) -> str:
    """The summary table as text."""
    paths = (GATEWAY, HAPROXY, DIRECT)
    header = (
        f"{'metric':<38}" + "".join(f"{p:>10}" for p in paths)
        + f"{'gw/hapx':>9}{'gw/dir':>9}  {'target':<18}result"
    )
    lines = [header, "-" * len(header)]
    for row in all_rows:
        lines.append(
            f"{row.label:<38}"
            + "".join(f"{_cell(row.number_format, row.values.get(p)):>10}" for p in paths)
            + f"{_cell('{:.2f}', row.ratio(HAPROXY)):>9}{_cell('{:.2f}', row.ratio(DIRECT)):>9}"
            + f"  {row.target.text if row.target else '':<18}{_result(row)}"
        )
    return "\n".join(lines)


def verdicts(all_rows: list[Row]) -> str:
    """One line per target: PASS or MISS, and the number judged."""
    lines = []
    for row in all_rows:
        if row.target is not None:
            value = row.verdict()[0]
            shown = _cell("{:.2f} x haproxy" if row.judged == HAPROXY else row.number_format, value)
            lines.append(f"  {_result(row):<5} {row.label} {row.target.text}: gateway {shown}")
    return "\n".join(lines)
