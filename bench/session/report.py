"""The summary: session start percentiles and the file transfers against the raw relay."""

import statistics

from bench.relay.measure import percentile
from bench.session.transfers import RAW, SESSION, TO_AGENT, TO_CONSOLE, Transfer

START_STEPS = (
    ("Join -> paired (gateway, console pick-up)", lambda t: t["paired"]),
    ("Join -> inner TLS done (agent)", lambda t: t["inner_tls"]),
    ("Join -> verified (agent)", lambda t: t["verified"]),
    ("  of which paired -> inner TLS done", lambda t: t["inner_tls"] - t["paired"]),
    ("  of which inner TLS -> verified (SPAKE2)", lambda t: t["verified"] - t["inner_tls"]),
)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for number, row in enumerate([header] + rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  " + "  ".join(cells).rstrip())
        if number == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def starts(timings: list[dict[str, float]]) -> str:
    """p50 / p99 / max in ms of each step of a session's start."""
    rows = []
    for name, step in START_STEPS:
        values = [step(t) * 1000 for t in timings]
        rows.append([name, f"{percentile(values, 0.5):.1f}", f"{percentile(values, 0.99):.1f}",
                     f"{max(values):.1f}"])
    return _table([f"session start, {len(timings)} runs (ms)", "p50", "p99", "max"], rows)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _cpu(samples: list[Transfer], name: str) -> float:
    """CPU seconds of C{name} per GB over all C{samples}."""
    return sum(s.cpu[name] for s in samples) / sum(s.size for s in samples) * 1e9


def transfers(samples: dict[tuple[str, str], list[Transfer]], size: int) -> str:
    """The transfers' table and the session / raw ratios."""
    rows = []
    for (path, direction), found in samples.items():
        if not found:
            continue
        speeds = [s.mb_s for s in found]
        session = path == SESSION
        rows.append([
            f"{direction} {path}",
            f"{_median(speeds):.1f}",
            f"{min(speeds):.1f}-{max(speeds):.1f}",
            f"{_median([s.stream_mb_s for s in found]):.1f}" if session else "",
            f"{_median([s.to_offer for s in found]):.2f}" if session else "",
            f"{_median([s.finish for s in found]):.2f}" if session else "",
            f"{_cpu(found, 'bench'):.2f}",
            f"{_cpu(found, 'gateway'):.2f}",
        ])
    rounds = max(len(v) for v in samples.values())
    lines = [
        _table(
            [f"{size / 2**20:.0f} MiB file, {rounds} rounds", "MB/s", "min-max", "stream MB/s", "to offer s",
             "finish s", "CPU s/GB bench", "gateway"],
            rows,
        ),
        "",
    ]
    for direction in (TO_AGENT, TO_CONSOLE):
        session, raw = samples.get((SESSION, direction)), samples.get((RAW, direction))
        if not session or not raw:
            continue
        raw_speed = _median([s.mb_s for s in raw])
        whole = _median([s.mb_s for s in session]) / raw_speed
        stream = _median([s.stream_mb_s for s in session]) / raw_speed
        cpu = _cpu(session, "bench") / _cpu(raw, "bench")
        lines.append(
            f"  {direction}: session / raw relay = {whole:.2f} end to end, {stream:.2f} while streaming; "
            f"CPU per GB of this process {cpu:.1f} x the raw relay's"
        )
    return "\n".join(lines)
