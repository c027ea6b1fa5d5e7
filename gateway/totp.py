"""
Time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30-second
steps), as authenticator apps make them, for operators who enrolled one.

Pure functions of a secret and a time; the gateway stores the last step
an operator used so that a code cannot be used twice.
"""

import base64
import hashlib
import hmac
import secrets
import struct
import urllib.parse

import attrs

SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation for HMAC-SHA1


@attrs.frozen
class TotpSettings:
    """How codes are made and how much clock drift is accepted."""

    period: int = 30
    digits: int = 6
    # Steps before and after the current one that are accepted too (clock drift).
    window: int = 1


def new_secret() -> bytes:
    """A fresh random secret."""
    return secrets.token_bytes(SECRET_BYTES)


def secret_text(secret: bytes) -> str:
    """The secret as authenticator apps take it typed in: base32, no padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def step_at(now: float, settings: TotpSettings = TotpSettings()) -> int:
    """The number of the time step C{now} (Unix time) is in."""
    return int(now // settings.period)


def code_at(secret: bytes, step: int, settings: TotpSettings = TotpSettings()) -> str:
    """The code for time step C{step} (RFC 4226's HOTP of the step)."""
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10 ** settings.digits).zfill(settings.digits)


def normalise(code: str) -> str:
    """A typed code without the spaces and dashes people put in it."""
    return "".join(c for c in code if c not in " -\t")


def matching_step(secret: bytes, code: str, now: float, settings: TotpSettings = TotpSettings()) -> int | None:
    """
    The time step whose code C{code} is, within the drift window around
    C{now}, or C{None}.  Every candidate is compared in constant time.
    """
    typed = normalise(code).encode("ascii", "replace")
    current = step_at(now, settings)
    found = None
    for step in range(current - settings.window, current + settings.window + 1):
        if hmac.compare_digest(code_at(secret, step, settings).encode("ascii"), typed) and found is None:
            found = step
    return found


def provisioning_uri(secret: bytes, account: str, issuer: str, settings: TotpSettings = TotpSettings()) -> str:
    """The C{otpauth://} URI authenticator apps read (typed in, or as a QR code)."""
    label = urllib.parse.quote(f"{issuer}:{account}", safe=":@")
    query = urllib.parse.urlencode(
        {"secret": secret_text(secret), "issuer": issuer, "algorithm": "SHA1",
         "digits": settings.digits, "period": settings.period}
    )
    return f"otpauth://totp/{label}?{query}"
