"""
The samples kept per way, and the final summary: one row per way with its
ratios to raw TLS, the request and ladder measurements, and the targets
with PASS or MISS.
"""

import collections
import statistics

import attrs

from bench.relay.measure import median, percentile
from bench.relay.report import Target
from bench.transports.traffic import PathFound
from wire import ladder

RAW, HTTPS_PORT, CONNECT, TUNNEL, TUNNEL_PROXY = (
    ladder.RAW, ladder.HTTPS_PORT, ladder.CONNECT, ladder.TUNNEL, ladder.TUNNEL_PROXY,
)
WAYS = (RAW, HTTPS_PORT, CONNECT, TUNNEL, TUNNEL_PROXY)
# The processes whose CPU time is measured during the bulk transfers.
# ("proxy": the CONNECT proxy, squid or tinyproxy.)
CLIENT, GATEWAY, PROXY = "client", "gateway", "proxy"
PROCESSES = (CLIENT, GATEWAY, PROXY)
# The proxies the connect way can go through (tests/proxies.py), the first by default.
CONNECT_PROXIES = ("squid", "tinyproxy")
# What each way goes through, for the table ({proxy}: the CONNECT proxy's name).
ROUTES = {
    RAW: "TLS straight to the raw port",
    HTTPS_PORT: "TLS straight to the HTTPS port",
    CONNECT: "TLS through {proxy}'s CONNECT tunnel to the HTTPS port",
    TUNNEL: "request tunnel, HTTPS requests straight to the HTTPS port",
    TUNNEL_PROXY: (
        "request tunnel, HTTP requests through the buffering proxy (in the client process) to the HTTP port"
    ),
}
# The tunnel mode each tunnelled way must run in for its numbers to mean what they say.
EXPECTED_MODE = {TUNNEL: "stream", TUNNEL_PROXY: "poll"}

CONNECT_RATIO = Target(">= 0.9 x raw", "min", 0.9)
STREAM_SPEED = Target(">= 20 MB/s", "min", 20.0)


@attrs.define
class WaySamples:
    """Everything measured on one way, over all rounds."""

    connects: list[float] = attrs.Factory(list)  # seconds for the agent's connection and Hello
    speeds: list[float] = attrs.Factory(list)  # MB/s, one per round
    trips: list[float] = attrs.Factory(list)  # seconds, every round trip of every round
    modes: list[str] = attrs.Factory(list)  # tunnel mode per round ("stream", "poll", "stream->poll")
    relayed: int = 0  # bytes of the bulk transfers
    cpu: collections.Counter = attrs.Factory(collections.Counter)  # process -> CPU seconds during them

    def speed(self) -> float | None:
        """Median MB/s over the rounds."""
        return median(self.speeds)

    def trip_ms(self, fraction: float) -> float | None:
        """A percentile of the round trips, milliseconds."""
        value = percentile(self.trips, fraction)
        return None if value is None else value * 1000

    def cpu_per_gb(self, process: str) -> float | None:
        """C{process}'s CPU seconds per 10^9 bytes of bulk transfer."""
        return self.cpu[process] / (self.relayed / 1e9) if self.relayed else None

    def mode(self) -> str:
        """The tunnel modes seen, with how many rounds each ("-" for no tunnel)."""
        counts = collections.Counter(m for m in self.modes if m)
        if not counts:
            return "-"
        if len(counts) == 1:
            return next(iter(counts))
        return ", ".join(f"{mode} x{n}" for mode, n in counts.most_common())

    def stayed_in(self, mode: str) -> bool:
        """Whether every round ran in C{mode} from start to end."""
        return bool(self.modes) and all(m == mode for m in self.modes)


@attrs.frozen
class Results:
    """What the run measured."""

    ways: dict  # way -> WaySamples
    request_times: list[float]  # seconds per GET /health through the buffering proxy
    paths: list[PathFound]  # the ladder with the raw port black-holed
    stagger: float  # the ladder's stagger, seconds
    leftover: int  # connections to the black hole still open after the ladder runs
    connect_proxy: str  # the CONNECT proxy's name (one of CONNECT_PROXIES)

    def ratio(self, measure, way: str) -> float | None:
        """C{measure(samples)} for C{way} over the same for raw TLS."""
        mine, raw = measure(self.ways[way]), measure(self.ways[RAW])
        return mine / raw if mine is not None and raw else None

    def request_ms(self) -> float | None:
        """Median time of one request through the buffering proxy, milliseconds."""
        value = median(self.request_times)
        return None if value is None else value * 1000


def _cell(fmt: str, value) -> str:
    return "-" if value is None else fmt.format(value)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000

# The table's columns: title, width (negative: left-aligned), number format.
_COLUMNS = (
    ("way", -13, "{}"),
    ("conn ms", 9, "{:.1f}"),
    ("MB/s", 8, "{:.1f}"),
    ("x raw", 7, "{:.2f}"),
    *((name, len(name) + 2, "{:.2f}") for name in PROCESSES),
    ("rtt p50 ms", 12, "{:.3f}"),
    ("x raw", 7, "{:.2f}"),
    ("rtt p99 ms", 12, "{:.3f}"),
    ("x raw", 7, "{:.2f}"),
    ("  mode", -1, "  {}"),
)


def _line(cells) -> str:
    return "".join(f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, (_, w, _) in zip(cells, _COLUMNS))


def _cpu_title() -> str:
    """A title over the CPU columns (the 5th and on)."""
    before = _line([""] * 4)
    width = sum(w for _, w, _ in _COLUMNS[4 : 4 + len(PROCESSES)])
    return before + f"{' CPU s/GB in bulk ':-^{width}}"


def table(results: Results) -> str:
    """One row per way: speed and round trips, each with its ratio to raw TLS."""
    header = _line([title for title, _, _ in _COLUMNS])
    lines = [_cpu_title(), header, "-" * len(header)]
    p50, p99 = (lambda s: s.trip_ms(0.5)), (lambda s: s.trip_ms(0.99))
    for way, s in results.ways.items():
        values = (
            way,
            _ms(median(s.connects)),
            s.speed(),
            results.ratio(WaySamples.speed, way),
            *(s.cpu_per_gb(p) for p in PROCESSES),
            p50(s),
            results.ratio(p50, way),
            p99(s),
            results.ratio(p99, way),
            s.mode(),
        )
        lines.append(_line([_cell(fmt, v) for v, (_, _, fmt) in zip(values, _COLUMNS)]))
    lines.append("")
    lines += [f"  {way:<13}{route.format(proxy=results.connect_proxy)}" for way, route in ROUTES.items()]
    return "\n".join(lines)


def extras(results: Results) -> str:
    """The request and ladder measurements."""
    found = results.paths
    winners = collections.Counter(p.winner for p in found)
    seconds = [p.seconds for p in found]
    lines = [
        "one HTTP request (GET /health via the buffering proxy, the tunnel's connection pool): "
        f"p50 {_cell('{:.3f}', results.request_ms())} ms over {len(results.request_times)}",
    ]
    if found:
        lines.append(
            "time to a working path, raw port black-holed "
            f"(Ladder.connect, stagger {results.stagger:.2f} s): median {statistics.median(seconds):.3f} s "
            f"(min {min(seconds):.3f}, max {max(seconds):.3f}) over {len(found)}; winner: "
            + ", ".join(f"{way} x{n}" for way, n in winners.most_common())
        )
        lines.append(f"connections to the black hole left open afterwards: {results.leftover}")
    return "\n".join(lines)


def _verdict(met: bool | None) -> str:
    return {True: "PASS", False: "MISS", None: "NOT MEASURED"}[met]


def targets(results: Results) -> list[tuple[str, str, str]]:
    """(target, what was measured, PASS / MISS / NOT MEASURED) for each target."""
    rows = []
    ratio = results.ratio(WaySamples.speed, CONNECT)
    rows.append((f"CONNECT ({results.connect_proxy}) throughput {CONNECT_RATIO.text}",
                 f"{_cell('{:.2f}', ratio)} x raw", _verdict(CONNECT_RATIO.met(ratio))))
    rows.append(_mode_checked(results, TUNNEL, "streaming tunnel throughput " + STREAM_SPEED.text, _stream))
    rows.append(_mode_checked(results, TUNNEL_PROXY, "long-poll round trip p50 <= streaming p50 + one request",
                              lambda s: _long_poll(results, s)))
    return rows


def _stream(samples: WaySamples) -> tuple[str, bool | None]:
    speed = samples.speed()
    return f"{_cell('{:.1f}', speed)} MB/s", STREAM_SPEED.met(speed)


def _mode_checked(results: Results, way: str, text: str, judge) -> tuple[str, str, str]:
    """A target on a tunnelled way, judged only if every round ran in the expected mode."""
    samples = results.ways[way]
    expected = EXPECTED_MODE[way]
    if not samples.stayed_in(expected):
        return text, f"{way} ran in mode {samples.mode()}, not {expected}", _verdict(None)
    shown, met = judge(samples)
    return text, shown, _verdict(met)


def _long_poll(results: Results, samples: WaySamples) -> tuple[str, bool | None]:
    """
    Long-polling against the streaming tunnel: both carry each exchange in
    HTTP requests; polling may add at most one request's time to it.
    """
    poll, stream, request = samples.trip_ms(0.5), results.ways[TUNNEL].trip_ms(0.5), results.request_ms()
    if None in (poll, stream, request):
        return "-", None
    limit = stream + request
    return f"{poll:.3f} ms vs {stream:.3f} + {request:.3f} = {limit:.3f} ms", poll <= limit


def verdicts(results: Results) -> str:
    """The targets as a small table."""
    rows = targets(results)
    width = max(len(t) for t, _, _ in rows)
    shown = max(len(m) for _, m, _ in rows)
    return "\n".join(f"  {t:<{width}}  {m:<{shown}}  {v}" for t, m, v in rows)
