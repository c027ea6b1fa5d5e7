"""
Helpers for the end-to-end tests with real programs only: a gateway run
by C{twistd} from a fresh state directory, questions to any Tk program on
a private display through Tk's C{send} (texts shown, widget geometry),
screenshots, the X input focus, and comparing pictures.
"""

import fnmatch
import json
import os
import subprocess
import sys
import time

import attrs
from PIL import Image, ImageChops, ImageDraw, ImageStat
from twisted.internet import threads

from gateway import pki
from tests import support, xvfb
from tests.agent_driver import SCREENSHOTS, _grab, deferLater

RAW = r"listening for the ponte protocol over TLS on 127\.0\.0\.1:(\d+)"
HTTPS = r"listening for HTTPS and the ponte protocol on 127\.0\.0\.1:(\d+)"
HTTP = r"listening for HTTP \(request tunnel\) on 127\.0\.0\.1:(\d+)"


@attrs.define
class TwistdGateway:
    """A running C{twistd -n ponte}: what the programs need to reach it (as L{support.RunningGateway} has)."""

    process: object
    layout: pki.Layout
    ca: bytes
    port: int
    https_port: int
    http_port: int


async def twistd_gateway(testcase, **sections) -> TwistdGateway:
    """
    Start the real gateway with C{twistd} on ephemeral loopback ports (a
    state directory made by L{support.make_state}: alice, password
    L{support.PASSWORD}); its ports are read from its log.
    """
    from tests import test_twistd

    state = os.path.abspath(testcase.mktemp())
    layout = support.make_state(state)
    text = (
        f"[gateway]\nstate_dir = {state}\n"
        "[listen]\nraw = tcp:0:interface=127.0.0.1\nhttps = tcp:0:interface=127.0.0.1\n"
        "http = tcp:0:interface=127.0.0.1\n"
        f"[tls]\ncertificate = {layout.path('gateway.crt')}\nkey = {layout.path('gateway.key')}\n"
    )
    for section, body in sections.items():
        text += f"[{section}]\n{body}\n"
    path = os.path.join(state, "ponte.conf")
    with open(path, "w") as f:
        f.write(text)
    process = test_twistd.start(testcase, path)
    ports = [int((await process.wait_for(pattern)).group(1)) for pattern in (RAW, HTTPS, HTTP)]
    with open(layout.path(layout.ca_certificate), "rb") as f:
        ca = f.read()
    return TwistdGateway(process, layout, ca, *ports)


# -- Tk's send ----------------------------------------------------------------------------------

# Tcl run inside the programs (sent): the texts mapped widgets show, a widget found by its path.
PROCS = r"""
proc e2e_texts {w} {
    set out {}
    foreach c [winfo children $w] {
        if {![winfo ismapped $c]} continue
        catch {lappend out [$c cget -text]}
        set class [winfo class $c]
        if {$class in {TEntry Entry}} {lappend out [$c get]}
        if {$class eq "Text"} {lappend out [$c get 1.0 end-1c]}
        if {$class eq "Treeview"} {
            foreach i [$c children {}] {lappend out [join [$c item $i -values] " | "]}
        }
        set out [concat $out [e2e_texts $c]]
    }
    return $out
}
proc e2e_find {w pattern} {
    foreach c [winfo children $w] {
        if {[string match $pattern $c] && [winfo ismapped $c]} {return $c}
        set found [e2e_find $c $pattern]
        if {$found ne ""} {return $found}
    }
    return ""
}
proc e2e_box {w} {
    return [list [winfo rootx $w] [winfo rooty $w] [winfo width $w] [winfo height $w]]
}
"""

_SEND = """
import json, sys, tkinter
root = tkinter.Tk()
root.withdraw()
prefix, script = sys.argv[1], sys.argv[2]
names = [n for n in root.tk.splitlist(root.tk.call("winfo", "interps")) if n.startswith(prefix)]
if not names:
    sys.exit(f"no Tk program named {prefix}* on the display")
result = root.tk.call("send", names[0], script)
print(json.dumps([str(item) for item in root.tk.splitlist(result)]))
"""


def _send(server, prefix: str, script: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _SEND, prefix, PROCS + script], env=server.environment(),
                          capture_output=True, text=True, timeout=10)
    if done.returncode:
        raise AssertionError(f"Tk send to {prefix} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def send(server, prefix: str, script: str):
    """
    Fires with the result of the Tcl C{script} (after L{PROCS}) run in the
    first Tk program on C{server}'s display whose name starts with
    C{prefix} (e.g. C{ponte-agent}), as a list of strings.
    """
    return threads.deferToThread(_send, server, prefix, script)


async def texts(server, prefix: str) -> list[str]:
    """The texts the program's mapped windows show: labels, buttons, entries, text areas, tree rows."""
    return await send(server, prefix, "e2e_texts .")


async def wait_for_text(server, prefix: str, wanted, timeout: float = 15.0, exited=lambda: False) -> list[str]:
    """The texts shown, once one contains C{wanted} (a string or a function of one text)."""
    test = wanted if callable(wanted) else (lambda text: wanted in text)
    deadline = time.monotonic() + timeout
    while True:
        shown = await texts(server, prefix)
        if any(test(t) for t in shown):
            return shown
        if time.monotonic() > deadline or exited():
            raise AssertionError(f"{wanted!r} not shown by {prefix} within {timeout} s; shown: {shown!r}")
        await deferLater(0.2)


async def box(server, prefix: str, pattern: str) -> tuple[int, int, int, int]:
    """Where the first mapped widget whose path matches C{pattern} is on the screen: x, y, width, height."""
    script = f"set w [e2e_find . {{{pattern}}}]; if {{$w eq {{}}}} {{list}} else {{e2e_box $w}}"
    found = await send(server, prefix, script)
    if not found:
        raise AssertionError(f"no mapped widget {pattern} in {prefix}")
    return tuple(int(n) for n in found)


async def focus_in(server, prefix: str, window: str, pattern: str, timeout: float = 10.0) -> str:
    """
    Give X window C{window} the keyboard and wait until the program's
    keyboard focus is on a widget whose path matches C{pattern} (a dialog
    puts it on its entry only once it is on screen); returns the path.
    """
    deadline = time.monotonic() + timeout
    while True:
        await threads.deferToThread(xvfb.xdotool, server, "windowfocus", "--sync", window)
        (focus,) = await send(server, prefix, "list [focus]")
        if fnmatch.fnmatchcase(focus, pattern):
            return focus
        if time.monotonic() > deadline:
            raise AssertionError(f"the keyboard is on {focus!r} in {prefix}, not on {pattern}")
        await deferLater(0.1)


# -- the X server --------------------------------------------------------------------------------


def _pointer_root(display_name: str) -> None:
    from Xlib import X, display

    connection = display.Display(display_name)
    try:
        connection.set_input_focus(X.PointerRoot, X.RevertToPointerRoot, X.CurrentTime)
        connection.sync()
    finally:
        connection.close()


def focus_follows_pointer(server):
    """
    Give the keyboard focus of C{server}'s display to whatever window the
    pointer is in (X's C{PointerRoot}), as a focus-follows-mouse window
    manager would: there is none on the test's Xvfb.
    """
    return threads.deferToThread(_pointer_root, server.display)


def shot_directory(testcase) -> str:
    """Where screenshots go: $PONTE_SCREENSHOTS, or one directory of the test's."""
    directory = SCREENSHOTS or getattr(testcase, "_e2e_shots", None)
    if directory is None:
        directory = testcase._e2e_shots = os.path.abspath(testcase.mktemp())
    os.makedirs(directory, exist_ok=True)
    return directory


async def screenshot(testcase, server, name: str, settle: float = 0.3) -> Image.Image:
    """The whole display as an RGB picture, also saved as C{name}.png in L{shot_directory}."""
    path = os.path.join(shot_directory(testcase), f"{name}.png")
    if settle:
        await deferLater(settle)
    await threads.deferToThread(_grab, server.display, path)
    return Image.open(path).convert("RGB")


# -- pictures ------------------------------------------------------------------------------------


@attrs.frozen
class Difference:
    """How far two pictures of the same size are apart, per channel level (0–255)."""

    mean: float  # the mean absolute difference over every pixel and channel
    largest: int  # the largest difference of any channel of any pixel
    off: float  # the share of pixels with a channel more than 8 levels off


def difference(a: Image.Image, b: Image.Image) -> Difference:
    if a.size != b.size:
        raise AssertionError(f"sizes differ: {a.size} and {b.size}")
    diff = ImageChops.difference(a, b)
    stat = ImageStat.Stat(diff)
    largest = max(channel[1] for channel in stat.extrema)
    worst = ImageChops.lighter(ImageChops.lighter(diff.getchannel(0), diff.getchannel(1)), diff.getchannel(2))
    histogram = worst.histogram()
    off = sum(histogram[9:]) / max(1, a.size[0] * a.size[1])
    return Difference(sum(stat.mean) / 3, largest, off)


def blank(image: Image.Image, boxes) -> Image.Image:
    """A copy of C{image} with C{boxes} (x0, y0, x1, y1) painted black."""
    copy = image.copy()
    draw = ImageDraw.Draw(copy)
    for b in boxes:
        draw.rectangle(b, fill=(0, 0, 0))
    return copy
