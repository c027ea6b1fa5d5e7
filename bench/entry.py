"""
The common entry point of the benchmarks: SIGTERM ends a run like Ctrl-C,
expected errors are reported in one line with exit status 1, and an
interruption exits 130.
"""

import signal
import sys


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def run_main(name: str, run, options, errors: tuple = (), show_type: bool = False) -> int:
    """
    Run C{run(options)} as the benchmark called C{name}; returns the exit
    status.  C{errors} are reported in one line (with their type's name
    when C{show_type}).
    """
    # The reactor installs its own handler while it runs.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(options)
    except errors as e:
        detail = f"{type(e).__name__}: {e}" if show_type else str(e)
        print(f"{name} benchmark: {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name} benchmark: interrupted", file=sys.stderr)
        return 130
