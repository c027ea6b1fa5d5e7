"""
Session codes: the characters the operator reads out and the customer types.

A code is written in Crockford's base32 alphabet (no I, L, O or U), is
case-insensitive and ignores spaces and dashes.  Its first part (the routing
part) is made by the gateway; its last part (the secret part) is made by the
console and never leaves the two ends.
"""

import hashlib
import hmac
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Letters a person may type for the digits they look like (Crockford's rule).
_ALIASES = {"I": "1", "L": "1", "O": "0"}
_IGNORED = " -\t"


class InvalidCode(ValueError):
    """
    The text cannot be a session code (wrong characters or wrong length).
    """


def normalise(text: str) -> str:
    """
    Return C{text} in canonical form: upper case, separators removed, the
    letters people confuse with digits mapped as Crockford specifies.

    @raise InvalidCode: for a character outside the alphabet.
    """
    out = []
    for char in text.upper():
        if char in _IGNORED:
            continue
        char = _ALIASES.get(char, char)
        if char not in ALPHABET:
            raise InvalidCode(f"{char!r} is not a character of a session code")
        out.append(char)
    return "".join(out)


def random_part(length: int) -> str:
    """
    Return C{length} characters drawn uniformly from the alphabet with a
    cryptographically secure generator.
    """
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def split(text: str, routing_length: int, secret_length: int) -> tuple[str, str]:
    """
    Split a typed code into its routing part and its secret part.

    @raise InvalidCode: if the normalised code is not exactly
        C{routing_length + secret_length} characters long.
    """
    code = normalise(text)
    expected = routing_length + secret_length
    if len(code) != expected:
        raise InvalidCode(
            f"a session code has {expected} characters, this one has {len(code)}"
        )
    return code[:routing_length], code[routing_length:]


def display(code: str) -> str:
    """
    Format a normalised code for reading out, e.g. C{K7QM-4XZ}.
    """
    code = normalise(code)
    half = (len(code) + 1) // 2
    return f"{code[:half]}-{code[half:]}" if len(code) > 4 else code


def fingerprint(routing: str) -> str:
    """
    Return a short tag of a routing part for correlating log lines; the code
    itself is never logged.  The tag is keyed with a per-process secret, so
    it cannot be reversed by trying every code.
    """
    digest = hmac.new(_LOG_KEY, routing.encode("ascii"), hashlib.sha256)
    return digest.hexdigest()[:10]


_LOG_KEY = secrets.token_bytes(32)
