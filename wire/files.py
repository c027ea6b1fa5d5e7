"""
Files sent over the session protocol: the receiving side's safe names,
resumable partial files and collision-free placement, and the sending side's
offer and chunks.

Everything here is synchronous and does no networking; the peer that names
the file, announces its size and hash and sends its chunks may be hostile.
"""

import errno
import hashlib
import os
import re
import stat
import unicodedata

import attrs

try:
    import fcntl
except ImportError:  # Windows: the lock within one process still holds.
    fcntl = None

CHUNK_SIZE = 60 * 1024
"""The largest chunk sent in one session-protocol command."""

PARTIAL_PREFIX = ".ponte-partial-"

_WINDOWS_INVALID = re.compile(r'[<>:"|?*]')
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NO_SPACE = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())
_MAX_COPIES = 10_000
_READ_BLOCK = 1024 * 1024
_OPEN_FLAGS = (
    getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


class FileNameRefused(ValueError):
    """
    A file name offered by the peer cannot be used safely, even after
    defanging.
    """


def _shown(name: str) -> str:
    """A name quoted for a message, shortened when it is very long."""
    return repr(name if len(name) <= 60 else name[:57] + "...")


def sanitise_name(name: str, max_length: int = 200) -> str:
    """
    Return a safe base name for a file whose name was chosen by the peer.

    The rules, in order:
      - a name holding a control character (C0, DEL, C1, NUL), a line or
        paragraph separator, a lone surrogate or a bidirectional-text control
        (which can disguise C{exe} as C{pdf}) is refused;
      - only the last component is kept, both C{/} and C{\\} counting as
        separators (C{../../etc/passwd} gives C{passwd});
      - an empty component, or one made only of dots and spaces (C{.},
        C{..}), is refused;
      - leading spaces and trailing spaces and dots are removed;
      - each leading dot becomes C{_}, so that no file is hidden from the
        user (C{.bashrc} gives C{_bashrc});
      - each of C{<>:"|?*} becomes C{_};
      - Windows device names (C{CON}, C{PRN}, C{AUX}, C{NUL}, C{COM0}-C{COM9},
        C{LPT0}-C{LPT9}, C{CONIN$}, C{CONOUT$}), in any case and with or
        without an extension (C{con.txt}), are refused;
      - a result longer than C{max_length} bytes in UTF-8 is refused, never
        truncated.

    @raise FileNameRefused: with the reason, when the name cannot be used.
    """
    if not isinstance(name, str):
        raise FileNameRefused(f"a file name must be text, not {type(name).__name__}")
    for char in name:
        if char in _BIDI_CONTROLS or unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise FileNameRefused(
                f"the file name {_shown(name)} is refused: "
                f"it contains the control character U+{ord(char):04X}"
            )
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not base.strip(". "):
        raise FileNameRefused(
            f"the file name {_shown(name)} is refused: it does not name a file"
        )
    base = base.lstrip(" ").rstrip(" .")
    stem = base.lstrip(".")
    base = "_" * (len(base) - len(stem)) + stem
    base = _WINDOWS_INVALID.sub("_", base)
    if base.split(".", 1)[0].rstrip(" ").upper() in _DEVICE_NAMES:
        raise FileNameRefused(
            f"the file name {_shown(name)} is refused: it is a reserved device name on Windows"
        )
    length = len(base.encode("utf-8"))
    if length > max_length:
        raise FileNameRefused(
            f"the file name {_shown(name)} is refused: it is {length} bytes long, "
            f"the limit is {max_length}"
        )
    return base


class TransferError(Exception):
    """
    A file transfer cannot go on; the message says why, for a person.
    """


class HashMismatch(TransferError):
    """
    The received bytes do not have the SHA-256 announced in the offer.
    """


class SizeMismatch(TransferError):
    """
    More bytes were sent than the offer announced, or fewer were there when
    the transfer was finished.
    """


class OffsetMismatch(TransferError):
    """
    A chunk did not start where the previous one ended (or a resume point is
    outside the file).
    """


class DiskFull(TransferError):
    """
    The disk (or the user's quota) has no room for the file; what was
    received so far is kept.
    """


class TooLarge(TransferError):
    """
    The offered file is larger than this receiver accepts.
    """


def _check_sha256(instance, attribute, value):
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be 64 lowercase hexadecimal digits, not {_shown(str(value))}"
        )


def _check_integer(instance, attribute, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be an integer, not {type(value).__name__}")


@attrs.frozen
class Offer:
    """
    A file the peer proposes to send: what it calls it, how many bytes it
    has and their SHA-256 (64 lowercase hexadecimal digits).
    """

    transfer_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    size: int = attrs.field(validator=_check_integer)
    sha256: str = attrs.field(validator=_check_sha256)


def _disk_full(error: OSError, what: str) -> OSError:
    """
    Return the exception to raise for C{error}: a L{DiskFull} when the disk
    or quota is full, C{error} itself otherwise.
    """
    if error.errno in _NO_SPACE:
        return DiskFull(
            f"no room left to {what} ({os.strerror(error.errno)}); free some space, "
            f"then send the file again to resume it"
        )
    return error


class ReceivingDirectory:
    """
    The directory received files are placed into, also holding the hidden
    partial files of unfinished transfers so that they can be resumed.
    """

    def __init__(self, directory: str, max_size: int = 4 * 1024**3):
        """
        Use C{directory}, creating it (readable by its owner only) if it does
        not exist, and accept files of at most C{max_size} bytes.
        """
        self.directory = directory
        self.max_size = max_size
        self._receiving = set()
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def start(self, offer: Offer) -> "Incoming":
        """
        Begin (or resume) receiving C{offer}.

        Partial data is kept per content (SHA-256 and size), not per
        transfer, so the same file offered again, even in a new session,
        continues where it stopped: the returned L{Incoming}'s C{offset} says
        how many bytes are already there. Those bytes are read again to hash
        them, so this takes time proportional to them.

        @raise FileNameRefused: if the offered name cannot be used.
        @raise TooLarge: if the file is larger than this directory accepts.
        @raise TransferError: for a negative size, or when the same content is
            already being received.
        @raise DiskFull: if there is no room to create the partial file.
        """
        name = sanitise_name(offer.name)
        if offer.size < 0:
            raise TransferError(f"the offer of {_shown(name)} announces a negative size")
        if offer.size > self.max_size:
            raise TooLarge(
                f"{_shown(name)} is {offer.size} bytes, larger than the {self.max_size} "
                f"bytes accepted here"
            )
        partial = os.path.join(self.directory, f"{PARTIAL_PREFIX}{offer.sha256}-{offer.size}")
        if partial in self._receiving:
            raise TransferError(f"{_shown(name)} is already being received")
        try:
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EISDIR):
                raise TransferError(
                    f"cannot receive {_shown(name)}: {partial} is not a regular file"
                ) from error
            raise _disk_full(error, f"receive {_shown(name)}") from error
        try:
            _lock(fd, name)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise TransferError(
                    f"cannot receive {_shown(name)}: {partial} is not a regular file"
                )
            digest = hashlib.sha256()
            if info.st_size > offer.size:
                # Cannot come from this module, which never writes past the size.
                os.ftruncate(fd, 0)
                offset = 0
            else:
                _hash_fd(fd, digest, info.st_size)
                offset = info.st_size
        except BaseException:
            os.close(fd)
            raise
        self._receiving.add(partial)
        return Incoming(
            offer, name, self.directory, partial, fd, digest, offset, self._receiving.discard
        )


def _lock(fd: int, name: str) -> None:
    """
    Take an exclusive lock on the partial file where the platform has one, so
    that two programs do not receive the same content at once.
    """
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise TransferError(
            f"{_shown(name)} is already being received by another program"
        ) from None
    except OSError:
        pass  # No locks on this filesystem: the check within this process remains.


def _hash_fd(fd: int, digest, length: int) -> None:
    """Feed the first C{length} bytes of C{fd} to C{digest}."""
    os.lseek(fd, 0, os.SEEK_SET)
    remaining = length
    while remaining:
        block = os.read(fd, min(_READ_BLOCK, remaining))
        if not block:
            raise TransferError("the partial file shrank while it was being read")
        digest.update(block)
        remaining -= len(block)


class Incoming:
    """
    One file being received: chunks are written in order to a partial file,
    which is checked against the offered SHA-256 and moved into place at the
    end under a name that does not replace any existing file.

    @ivar offer: the L{Offer} being received.
    @ivar name: the sanitised name the file will be given (or a numbered
        variant of it).
    @ivar offset: how many bytes have been received so far.
    @ivar path: the final path of the file, L{None} until L{finish} succeeds.
    """

    def __init__(self, offer, name, directory, partial, fd, digest, offset, release):
        """Made by L{ReceivingDirectory.start}."""
        self.offer = offer
        self.name = name
        self.offset = offset
        self.path = None
        self._directory = directory
        self._partial = partial
        self._fd = fd
        self._digest = digest
        self._release = release

    def _check_open(self) -> None:
        if self._fd is None:
            raise TransferError(f"the transfer of {_shown(self.name)} is already over")

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            finally:
                self._release(self._partial)

    def write(self, offset: int, data: bytes) -> None:
        """
        Write the chunk C{data}, which the peer says starts at byte
        C{offset}; it is handed to the operating system before returning.

        If the disk is full, the chunk is not counted and the partial file
        keeps everything received before it.

        @raise OffsetMismatch: if C{offset} is not where the previous chunk
            ended.
        @raise SizeMismatch: if the chunk goes beyond the offered size.
        @raise DiskFull: if the disk or the quota is full.
        @raise TransferError: if the transfer is already over.
        """
        self._check_open()
        if offset != self.offset:
            raise OffsetMismatch(
                f"a chunk of {_shown(self.name)} starts at byte {offset}, "
                f"the next byte expected is {self.offset}"
            )
        if self.offset + len(data) > self.offer.size:
            raise SizeMismatch(
                f"{_shown(self.name)} was announced as {self.offer.size} bytes, "
                f"the peer sent more"
            )
        try:
            os.lseek(self._fd, self.offset, os.SEEK_SET)
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as error:
            try:
                os.ftruncate(self._fd, self.offset)
            except OSError:
                pass  # What was written is a correct prefix of the chunk anyway.
            raise _disk_full(error, f"write {_shown(self.name)}") from error
        self._digest.update(data)
        self.offset += len(data)

    def finish(self) -> str:
        """
        Check the received file and move it into place, readable by its
        owner only, as C{name} or, if that exists, C{name (1)}, C{name (2)}
        ... (before the extension), never replacing an existing file.

        @return: the final path.
        @raise SizeMismatch: if bytes are still missing; the transfer stays
            open.
        @raise HashMismatch: if the bytes do not have the offered SHA-256;
            the partial file is deleted.
        @raise DiskFull: if there is no room for the final name.
        @raise TransferError: if the transfer is already over.
        """
        self._check_open()
        if self.offset != self.offer.size:
            raise SizeMismatch(
                f"{_shown(self.name)} is incomplete: {self.offset} of "
                f"{self.offer.size} bytes received"
            )
        if self._digest.hexdigest() != self.offer.sha256:
            self.discard()
            raise HashMismatch(
                f"{_shown(self.name)} arrived damaged or altered: its SHA-256 is not "
                f"the one announced, so it was deleted"
            )
        try:
            os.fsync(self._fd)
            if hasattr(os, "fchmod"):
                os.fchmod(self._fd, 0o600)
        except BaseException:
            self._close()
            raise
        # Closed before linking: Windows cannot link, rename or delete an open file.
        self._close()
        try:
            final = _place(self._partial, self._directory, self.name)
        except OSError as error:
            raise _disk_full(error, f"store {_shown(self.name)}") from error
        self.path = final
        return final

    def abandon(self) -> None:
        """
        Stop receiving, keeping the partial file so that the same file
        offered later resumes; used when the connection drops. Nothing
        happens if the transfer is already over.
        """
        self._close()

    def discard(self) -> None:
        """
        Stop receiving and delete the partial file; used when the transfer is
        cancelled or permission to send files is withdrawn. Nothing happens if
        the transfer is already over.
        """
        if self._fd is None:
            return
        self._close()
        try:
            os.unlink(self._partial)
        except FileNotFoundError:
            pass


def _candidates(name: str):
    """C{name}, then C{name (1)}, C{name (2)} ... with the extension kept last."""
    stem, extension = os.path.splitext(name)
    yield name
    for number in range(1, _MAX_COPIES):
        yield f"{stem} ({number}){extension}"


def _place(partial: str, directory: str, name: str) -> str:
    """
    Give C{partial} the first free name of L{_candidates} in C{directory}.

    A hard link never replaces an existing file, so a name taken in the
    meantime is simply skipped. Where hard links are not available, the name
    is first claimed by creating it exclusively, then the partial file is
    renamed over that empty claim.
    """
    use_link = True
    for candidate in _candidates(name):
        final = os.path.join(directory, candidate)
        if use_link:
            try:
                os.link(partial, final)
            except FileExistsError:
                continue
            except OSError as error:
                if error.errno in _NO_SPACE:
                    raise
                use_link = False
            else:
                os.unlink(partial)
                return final
        try:
            claim = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
        except FileExistsError:
            continue
        os.close(claim)
        try:
            os.replace(partial, final)
        except BaseException:
            os.unlink(final)
            raise
        return final
    raise TransferError(
        f"cannot store {_shown(name)}: {_MAX_COPIES} files of that name already exist"
    )


class Outgoing:
    """
    A local file to send: its L{Offer} and its chunks.

    @ivar offer: the L{Offer} to send to the peer.
    @ivar path: the file's path.
    """

    def __init__(self, path: str, file, offer: Offer):
        """Made by L{Outgoing.open}."""
        self.path = path
        self.offer = offer
        self._file = file

    @classmethod
    def open(cls, path: str, transfer_id: str) -> "Outgoing":
        """
        Open the regular file at C{path} and read it once to learn its size
        and SHA-256; the offer names it by its base name.

        @raise TransferError: if C{path} is not a regular file.
        @raise OSError: if it cannot be read.
        """
        file = open(path, "rb")
        try:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise TransferError(f"{path} is not a regular file and cannot be sent")
            digest = hashlib.sha256()
            size = 0
            while block := file.read(_READ_BLOCK):
                digest.update(block)
                size += len(block)
        except BaseException:
            file.close()
            raise
        offer = Offer(
            transfer_id=transfer_id,
            name=os.path.basename(path),
            size=size,
            sha256=digest.hexdigest(),
        )
        return cls(path, file, offer)

    def chunks(self, offset: int, chunk_size: int = CHUNK_SIZE):
        """
        Return an iterator of C{(offset, data)} chunks of at most
        C{chunk_size} bytes, from byte C{offset} (where the receiver says it
        stands) to the end of the file as offered.

        The iterator raises L{SizeMismatch} if the file got shorter since it
        was offered.

        @raise ValueError: if C{chunk_size} is not between 1 and 60 KiB.
        @raise OffsetMismatch: if C{offset} is outside the file.
        """
        if not 0 < chunk_size <= CHUNK_SIZE:
            raise ValueError(
                f"a chunk has between 1 and {CHUNK_SIZE} bytes, not {chunk_size}"
            )
        if not 0 <= offset <= self.offer.size:
            raise OffsetMismatch(
                f"the receiver asked for {_shown(self.offer.name)} from byte {offset}, "
                f"but it has {self.offer.size} bytes"
            )
        return self._chunks(offset, chunk_size)

    def _chunks(self, offset: int, chunk_size: int):
        while offset < self.offer.size:
            self._file.seek(offset)
            data = self._file.read(min(chunk_size, self.offer.size - offset))
            if not data:
                raise SizeMismatch(
                    f"{self.path} got shorter while it was being sent"
                )
            yield offset, data
            offset += len(data)

    def close(self) -> None:
        """Close the file."""
        self._file.close()
