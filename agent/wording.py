"""The words the customer reads for each scope, way and error."""

from wire import commands, ladder
from wire import session_commands as sc

# What the operator may do, as the customer reads it ("Alice wants to …").
WANTS = {
    sc.VIEW: "see your screen",
    sc.CONTROL: "control your mouse and keyboard",
    sc.SEND_FILE: "send files to this computer",
    sc.RECEIVE_FILE: "receive a file you choose",
    sc.SYSTEM_INFO: "see information about this computer",
    sc.SHELL: "use a command prompt as you",
    sc.CLIPBOARD: "use your clipboard",
}

# The same, as an item of the "allowed now" list.
ALLOWED = {
    sc.VIEW: "See your screen",
    sc.CONTROL: "Control mouse and keyboard",
    sc.SEND_FILE: "Send you files",
    sc.RECEIVE_FILE: "Receive a file from you",
    sc.SYSTEM_INFO: "See system information",
    sc.SHELL: "Command prompt",
    sc.CLIPBOARD: "Clipboard",
}

WAYS = {
    ladder.RAW: "directly",
    ladder.HTTPS_PORT: "over HTTPS",
    ladder.CONNECT: "through your proxy",
    ladder.TUNNEL: "over an HTTPS tunnel",
    ladder.TUNNEL_PROXY: "over an HTTPS tunnel through your proxy",
}

NO_SUCH_CODE = "This code does not exist or has expired — ask your operator for a new one."


def lookup_error(error: Exception) -> str:
    """What to tell the customer when looking up or joining a code failed."""
    if isinstance(error, commands.RateLimited):
        seconds = commands.RateLimited.retry_after(str(error))
        return f"Too many attempts — try again in {seconds} seconds." if seconds else "Too many attempts — try again later."
    if isinstance(error, commands.CodeBusy):
        return "Someone is already connected with this code — ask your operator for a new one."
    if isinstance(error, (commands.UnknownCode, commands.CodeExpired, commands.CodeUsed, commands.CodeCancelled)):
        return NO_SUCH_CODE
    if isinstance(error, ladder.NoWayThrough):
        return "Cannot reach the support server. " + " ".join(error.report.lines()[:3])
    if isinstance(error, commands.GatewayError):
        return str(error)
    return f"Something went wrong: {error}"


def duration(seconds: float) -> str:
    """A grant's length in words."""
    if seconds <= 0:
        return "for this session"
    minutes = round(seconds / 60)
    return f"for {minutes} minute{'s' if minutes != 1 else ''}" if minutes else f"for {round(seconds)} seconds"
