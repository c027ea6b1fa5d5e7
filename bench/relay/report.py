"""
The final summary: one row per metric with the three paths, the gateway's
ratios to haproxy and to direct, and the issue's target with PASS or MISS.
"""

import attrs

from bench.relay.idle import IdleMemory
from bench.relay.measure import Samples

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
    unit_format: str
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
    return [
        Row("throughput one way (MB/s)", "{:.1f}", each(lambda s: s.throughput("one_way")),
            Target(">= 0.8 x haproxy", "min", 0.8), "haproxy"),
        Row("throughput both ways (MB/s)", "{:.1f}", each(lambda s: s.throughput("two_way"))),
        Row("relay CPU (s per GB one way)", "{:.2f}", {n: s.cpu_per_gb() for n, s in samples.items() if n != DIRECT},
            Target("<= 1.3 x haproxy", "max", 1.3), "haproxy"),
        Row("64 B round trip p50 (µs)", "{:.0f}", p50),
        Row("64 B round trip p99 (µs)", "{:.0f}", each(lambda s: s.trip(0.99))),
        Row("added round trip over direct p50 (µs)", "{:.0f}",
            {n: _difference(p50[n], p50.get(DIRECT)) for n in samples if n != DIRECT},
            Target("<= 200 µs", "max", 200.0), "value"),
        Row("memory per idle paired session (KiB)", "{:.1f}", {n: m.per_session_kib for n, m in idle.items()},
            Target("<= 64 KiB", "max", 64.0), "value"),
    ]


def _cell(fmt: str, value) -> str:
    return "-" if value is None else fmt.format(value)


def table(all_rows: list[Row]) -> str:
    """The summary table as text."""
    header = (f"{'metric':<38}{GATEWAY:>10}{HAPROXY:>10}{DIRECT:>10}"
              f"{'gw/hapx':>9}{'gw/dir':>9}  {'target':<18}result")
    lines = [header, "-" * len(header)]
    for row in all_rows:
        judged, met = row.verdict()
        result = {True: "PASS", False: "MISS", None: "-"}[met] if row.target else ""
        lines.append(
            f"{row.label:<38}"
            + "".join(f"{_cell(row.unit_format, row.values.get(n)):>10}" for n in (GATEWAY, HAPROXY, DIRECT))
            + f"{_cell('{:.2f}', row.ratio(HAPROXY)):>9}{_cell('{:.2f}', row.ratio(DIRECT)):>9}"
            + f"  {row.target.text if row.target else '':<18}{result}"
        )
    return "\n".join(lines)


def verdicts(all_rows: list[Row]) -> str:
    """One line per target: the judged number and PASS or MISS."""
    lines = []
    for row in all_rows:
        if row.target is None:
            continue
        value, met = row.verdict()
        shown = _cell("{:.2f} x haproxy" if row.judged == "haproxy" else row.unit_format, value)
        word = {True: "PASS", False: "MISS", None: "NOT MEASURED"}[met]
        lines.append(f"  {word:<5} {row.label} {row.target.text}: gateway {shown}")
    return "\n".join(lines)
