"""Small helpers for the delayed calls every module keeps."""


def cancel(*calls) -> None:
    """Cancel each of C{calls} that is a delayed call still pending (C{None}s are fine)."""
    for call in calls:
        if call is not None and call.active():
            call.cancel()
