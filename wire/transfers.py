"""
File transfers over the session protocol, the same on both ends: receiving
offered files into a L{ReceivingDirectory}, and sending a local file with a
window of chunks in flight.  Errors are turned into the session protocol's
errors, with messages for a person.
"""

import attrs
from twisted.internet import defer

from wire import files, logs
from wire.session_commands import (
    FileChunk,
    FileDone,
    OfferFile,
    Refused,
    SessionLimits,
    TransferFailed,
    UnknownTransfer,
)

INBOUND = "in"
OUTBOUND = "out"


@attrs.define
class Transfer:
    """What the user sees of one transfer (both directions)."""

    transfer_id: str
    direction: str
    name: str
    size: int
    sha256: str
    done: int = 0
    outcome: str | None = None  # None while running, then "done", "cancelled" or "failed"
    detail: str = ""  # the final path, or why it stopped


class TransferCancelled(Exception):
    """The transfer was cancelled (by either side, or a revoked grant)."""


class Inbound:
    """
    Files being received, by transfer id.  C{changed(transfer)} is called on
    every start, chunk and end.
    """

    log = logs.logger(__name__)

    def __init__(self, directory: files.ReceivingDirectory, limits: SessionLimits, changed):
        self.directory = directory
        self.limits = limits
        self.changed = changed
        self._incoming: dict[str, tuple[files.Incoming, Transfer]] = {}

    def offer(self, transfer_id: str, name: str, size: int, sha256: str) -> int:
        """Accept an offer; returns the offset to start from."""
        if transfer_id in self._incoming:
            raise TransferFailed(f"transfer {transfer_id!r} is already running")
        if len(self._incoming) >= self.limits.max_transfers:
            raise Refused(f"at most {self.limits.max_transfers} transfers at once")
        if size > self.limits.max_file_size:
            raise Refused(f"the file is larger than {self.limits.max_file_size} bytes")
        try:
            incoming = self.directory.start(files.Offer(transfer_id, name, size, sha256))
        except files.FileNameRefused as e:
            raise Refused(f"file name refused: {e}") from e
        except files.TooLarge as e:
            raise Refused(str(e)) from e
        except (TypeError, ValueError) as e:
            raise Refused(f"malformed offer: {e}") from e
        except (files.TransferError, OSError) as e:
            raise TransferFailed(str(e)) from e
        transfer = Transfer(transfer_id, INBOUND, name, size, sha256, done=incoming.offset)
        self._incoming[transfer_id] = (incoming, transfer)
        self.changed(transfer)
        return incoming.offset

    def _get(self, transfer_id: str):
        try:
            return self._incoming[transfer_id]
        except KeyError:
            raise UnknownTransfer(f"no transfer {transfer_id!r} is being received") from None

    def chunk(self, transfer_id: str, offset: int, data: bytes) -> None:
        """Write one chunk; a bad chunk stops the transfer and discards it."""
        incoming, transfer = self._get(transfer_id)
        if len(data) > self.limits.max_chunk:
            self._stop(transfer_id, "failed", f"a chunk larger than {self.limits.max_chunk} bytes")
            raise TransferFailed(f"chunk larger than {self.limits.max_chunk} bytes")
        try:
            incoming.write(offset, data)
        except files.DiskFull as e:
            # What was written is kept: once there is room, sending again resumes.
            del self._incoming[transfer_id]
            incoming.abandon()
            self._end(transfer, "failed", str(e))
            raise TransferFailed(str(e)) from e
        except (files.TransferError, OSError) as e:
            self._stop(transfer_id, "failed", str(e))
            raise TransferFailed(str(e)) from e
        transfer.done = offset + len(data)
        self.changed(transfer)

    def finish(self, transfer_id: str) -> str:
        """Check size and hash and move the file into place; returns its path."""
        incoming, transfer = self._get(transfer_id)
        del self._incoming[transfer_id]
        try:
            path = incoming.finish()
        except (files.TransferError, OSError) as e:
            incoming.discard()
            self._end(transfer, "failed", str(e))
            raise TransferFailed(str(e)) from e
        self._end(transfer, "done", path)
        return path

    def cancel(self, transfer_id: str, reason: str) -> None:
        """Stop receiving and delete the partial file (cancel, revoked grant)."""
        if transfer_id in self._incoming:
            self._stop(transfer_id, "cancelled", reason)

    def cancel_all(self, reason: str) -> list[str]:
        """Cancel every transfer; returns their ids."""
        ids = list(self._incoming)
        for transfer_id in ids:
            self.cancel(transfer_id, reason)
        return ids

    def keep_all(self, reason: str) -> None:
        """The connection dropped: close every transfer but keep the partial data to resume."""
        running, self._incoming = list(self._incoming.values()), {}
        for incoming, transfer in running:
            incoming.abandon()
            self._end(transfer, "failed", f"{reason}; sending it again resumes it")

    def _stop(self, transfer_id: str, outcome: str, detail: str) -> None:
        incoming, transfer = self._incoming.pop(transfer_id)
        incoming.discard()
        self._end(transfer, outcome, detail)

    def _end(self, transfer: Transfer, outcome: str, detail: str) -> None:
        transfer.outcome, transfer.detail = outcome, detail
        self.log.info(
            "received file {outcome}: {size} bytes, sha256 {sha256}",
            outcome=outcome,
            size=transfer.size,
            sha256=transfer.sha256,
        )
        self.changed(transfer)


class Outbound:
    """Files being sent, by transfer id; each one can be cancelled."""

    def __init__(self, limits: SessionLimits, changed):
        self.limits = limits
        self.changed = changed
        self._cancelled: dict[str, str | None] = {}

    def cancel(self, transfer_id: str, reason: str) -> None:
        """Stop sending C{transfer_id} before its next chunk."""
        if transfer_id in self._cancelled:
            self._cancelled[transfer_id] = reason

    def cancel_all(self, reason: str) -> list[str]:
        """Cancel every running transfer; returns their ids."""
        ids = [t for t, r in self._cancelled.items() if r is None]
        for transfer_id in ids:
            self.cancel(transfer_id, reason)
        return ids

    async def send(self, channel, outgoing: files.Outgoing) -> Transfer:
        """
        Offer C{outgoing} on C{channel} and send it with at most
        C{file_window} chunks unanswered; fires with the finished
        L{Transfer} or fails with the peer's error or L{TransferCancelled}.
        """
        offer = outgoing.offer
        transfer = Transfer(offer.transfer_id, OUTBOUND, offer.name, offer.size, offer.sha256)
        self._cancelled[offer.transfer_id] = None
        try:
            await self._send(channel, outgoing, transfer)
        except TransferCancelled as e:
            transfer.outcome, transfer.detail = "cancelled", str(e)
            raise
        except Exception as e:
            transfer.outcome, transfer.detail = "failed", str(e)
            raise
        else:
            transfer.outcome, transfer.detail = "done", offer.sha256
            return transfer
        finally:
            del self._cancelled[offer.transfer_id]
            outgoing.close()
            self.changed(transfer)

    def _check(self, transfer_id: str) -> None:
        reason = self._cancelled.get(transfer_id)
        if reason is not None:
            raise TransferCancelled(reason)

    async def _send(self, channel, outgoing: files.Outgoing, transfer: Transfer) -> None:
        offer = outgoing.offer
        answer = await channel.callRemote(
            OfferFile, transfer_id=offer.transfer_id, name=offer.name, size=offer.size, sha256=offer.sha256
        )
        start = answer["offset"]
        if not 0 <= start <= offer.size:
            raise TransferFailed(f"the receiver asked to resume at {start} of {offer.size} bytes")
        transfer.done = start
        self.changed(transfer)
        in_flight: list[defer.Deferred] = []
        try:
            for offset, data in outgoing.chunks(start, self.limits.max_chunk):
                self._check(offer.transfer_id)
                in_flight.append(
                    channel.callRemote(FileChunk, transfer_id=offer.transfer_id, offset=offset, data=data)
                )
                if len(in_flight) >= self.limits.file_window:
                    await in_flight.pop(0)
                transfer.done = offset + len(data)
                self.changed(transfer)
            while in_flight:
                await in_flight.pop(0)
        finally:
            for d in in_flight:
                d.addErrback(lambda failure: None)
        self._check(offer.transfer_id)
        await channel.callRemote(FileDone, transfer_id=offer.transfer_id)
