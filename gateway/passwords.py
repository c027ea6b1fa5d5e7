"""
Operator passwords: Argon2id hashes, verified in constant time.

The parameters (64 MiB, 3 passes, 4 lanes) are above OWASP's minimum for
Argon2id (19 MiB, 2 passes, 1 lane).
"""

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(
    time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16, type=Type.ID
)
# Verified against when the user does not exist, so that an unknown name
# takes as long as a wrong password.
_DUMMY = _HASHER.hash("ponte: no such user")


def hash_password(password: str) -> str:
    """An encoded Argon2id hash of C{password} with a fresh salt."""
    return _HASHER.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    """
    Whether C{password} matches the hash C{encoded}; with C{encoded}
    C{None} (no such user) it does the same work and answers C{False}.
    Blocking (tens of milliseconds): run it in a thread from the reactor.
    """
    try:
        _HASHER.verify(encoded or _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return encoded is not None


def check_new_password(password: str) -> None:
    """
    @raise ValueError: if C{password} is too weak to be set.
    """
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    if len(password) > 1024:
        raise ValueError("a password may have at most 1024 characters")
