"""Receiving and sending files: safe names, hash check, resume, no overwrite, disk full."""

import errno
import hashlib
import os
import stat

from twisted.trial import unittest

from wire import files
from wire.files import (
    CHUNK_SIZE,
    DiskFull,
    FileNameRefused,
    HashMismatch,
    Offer,
    OffsetMismatch,
    Outgoing,
    ReceivingDirectory,
    SizeMismatch,
    TooLarge,
    TransferError,
    sanitise_name,
)


def offer_of(data: bytes, name: str = "report.pdf", transfer_id: str = "t1") -> Offer:
    return Offer(
        transfer_id=transfer_id,
        name=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def open_fds():
    """The numbers of this process's open file descriptors (Linux only)."""
    return set(os.listdir("/proc/self/fd"))


class SanitiseNameTests(unittest.TestCase):
    def assertRefused(self, name, reason, **kwargs):
        with self.assertRaises(FileNameRefused) as raised:
            sanitise_name(name, **kwargs)
        self.assertIn(reason, str(raised.exception))

    def test_plain_names_unchanged(self):
        for name in ["report.pdf", "Ünïcödé ファイル.txt", "a b.tar.gz", "x", "v1.2"]:
            self.assertEqual(sanitise_name(name), name)

    def test_last_component_only(self):
        self.assertEqual(sanitise_name("../../etc/passwd"), "passwd")
        self.assertEqual(sanitise_name("C:\\Windows\\system32\\evil.dll"), "evil.dll")
        self.assertEqual(sanitise_name("/abs/path/file"), "file")
        self.assertEqual(sanitise_name("..\\..\\boot.ini"), "boot.ini")
        self.assertEqual(sanitise_name("a/b\\c/d.txt"), "d.txt")
        self.assertEqual(sanitise_name("\\\\server\\share\\f.doc"), "f.doc")

    def test_no_name_refused(self):
        for name in ["", ".", "..", "...", " ", " . . ", "dir/", "dir\\", "a/..", "x\\.", "/"]:
            self.assertRefused(name, "does not name a file")

    def test_control_characters_refused(self):
        for name in ["a\x00b", "a\nb", "a\rb", "tab\there", "del\x7f", "c1\x85", "esc\x1b[31m"]:
            self.assertRefused(name, "control character")

    def test_control_character_in_directory_part_refused(self):
        """A hostile name is refused even if the bad part would be dropped."""
        self.assertRefused("a\x00/b.txt", "U+0000")

    def test_bidi_and_separators_refused(self):
        """Right-to-left override disguises an executable; line separators break display."""
        self.assertRefused("invoice\u202efdp.exe", "U+202E")
        self.assertRefused("a\u2066b", "U+2066")
        self.assertRefused("line\u2028sep", "U+2028")
        self.assertRefused("lone\ud800surrogate", "U+D800")

    def test_device_names_refused(self):
        names = [
            "CON", "con", "Con", "PRN", "aux", "NUL", "nul ", "con.txt", "CON.tar.gz",
            "COM1", "com9.log", "LPT1", "lpt9", "COM0", "con. ", "con .txt", "PRN...",
            "dir/aux.c", "conin$", "CONOUT$.txt", "COM\u00b9",
        ]
        for name in names:
            self.assertRefused(name, "reserved device name")

    def test_names_near_device_names_allowed(self):
        for name in ["CONS", "console.txt", "com10", "LPT", "nully", "auxiliary.doc", "xcon"]:
            self.assertEqual(sanitise_name(name), name)

    def test_spaces_and_trailing_dots_stripped(self):
        self.assertEqual(sanitise_name("  report.pdf  "), "report.pdf")
        self.assertEqual(sanitise_name("report.pdf..."), "report.pdf")
        self.assertEqual(sanitise_name("report. . ."), "report")
        self.assertEqual(sanitise_name("a b"), "a b")

    def test_leading_dots_made_visible(self):
        self.assertEqual(sanitise_name(".bashrc"), "_bashrc")
        self.assertEqual(sanitise_name("..hidden"), "__hidden")
        self.assertEqual(sanitise_name("home/.ssh/.authorized_keys"), "_authorized_keys")
        self.assertEqual(sanitise_name(" .profile"), "_profile")

    def test_no_partial_file_name_possible(self):
        """A peer cannot name its file like one of the hidden partial files."""
        name = sanitise_name(".ponte-partial-" + "0" * 64 + "-3")
        self.assertFalse(name.startswith("."))

    def test_windows_invalid_characters_replaced(self):
        self.assertEqual(sanitise_name('a<b>c:d"e|f?g*h'), "a_b_c_d_e_f_g_h")
        self.assertEqual(sanitise_name("C:evil.dll"), "C_evil.dll")
        self.assertEqual(sanitise_name("file.txt:stream"), "file.txt_stream")
        self.assertEqual(sanitise_name("CON:"), "CON_")

    def test_too_long_refused_not_truncated(self):
        self.assertRefused("a" * 300, "300 bytes long, the limit is 200")
        self.assertEqual(sanitise_name("a" * 200), "a" * 200)
        self.assertRefused("a" * 201, "201 bytes")

    def test_length_counted_in_utf8_bytes(self):
        self.assertEqual(sanitise_name("é" * 100), "é" * 100)
        self.assertRefused("é" * 101, "202 bytes")
        self.assertRefused("abcdef", "limit is 5", max_length=5)

    def test_message_shows_name_safely(self):
        """Long names are shortened in the message; control characters appear escaped."""
        with self.assertRaises(FileNameRefused) as raised:
            sanitise_name("x" * 300)
        self.assertLess(len(str(raised.exception)), 150)
        with self.assertRaises(FileNameRefused) as raised:
            sanitise_name("a\x00b")
        self.assertIn("'a\\x00b'", str(raised.exception))

    def test_is_a_value_error(self):
        self.assertTrue(issubclass(FileNameRefused, ValueError))

    def test_not_text_refused(self):
        self.assertRaises(FileNameRefused, sanitise_name, b"bytes.txt")


class OfferTests(unittest.TestCase):
    def test_sha256_must_be_lowercase_hex(self):
        good = "a" * 64
        Offer(transfer_id="t", name="n", size=1, sha256=good)
        for bad in ["A" * 64, "a" * 63, "a" * 65, "g" * 64, "a" * 64 + "\n", "", 5]:
            with self.assertRaises(ValueError) as raised:
                Offer(transfer_id="t", name="n", size=1, sha256=bad)
            self.assertIn("64 lowercase hexadecimal digits", str(raised.exception))

    def test_size_must_be_an_integer(self):
        for bad in ["1", 1.0, True, None]:
            self.assertRaises(TypeError, Offer, transfer_id="t", name="n", size=bad, sha256="a" * 64)

    def test_frozen(self):
        offer = offer_of(b"x")
        self.assertRaises(AttributeError, setattr, offer, "size", 2)


class ReceivingTests(unittest.TestCase):
    def setUp(self):
        self.directory = self.mktemp()
        self.receiving = ReceivingDirectory(self.directory)

    def partials(self):
        return [name for name in os.listdir(self.directory) if name.startswith(".ponte-partial-")]

    def receive(self, data, name="report.pdf", chunk=1000):
        incoming = self.receiving.start(offer_of(data, name))
        for offset in range(0, len(data), chunk):
            incoming.write(offset, data[offset:offset + chunk])
        return incoming.finish()

    def test_directory_created_private(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.directory).st_mode) & 0o077, 0)
        ReceivingDirectory(self.directory)  # An existing directory is fine.

    def test_full_receive(self):
        data = os.urandom(150_000)
        incoming = self.receiving.start(offer_of(data))
        self.assertEqual(incoming.offset, 0)
        self.assertIsNone(incoming.path)
        for offset in range(0, len(data), CHUNK_SIZE):
            incoming.write(offset, data[offset:offset + CHUNK_SIZE])
        self.assertEqual(incoming.offset, len(data))
        path = incoming.finish()
        self.assertEqual(path, os.path.join(self.directory, "report.pdf"))
        self.assertEqual(incoming.path, path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(self.partials(), [])

    def test_empty_file(self):
        path = self.receive(b"", name="empty")
        self.assertEqual(os.path.getsize(path), 0)

    def test_name_sanitised(self):
        path = self.receive(b"x", name="../../.bashrc")
        self.assertEqual(path, os.path.join(self.directory, "_bashrc"))

    def test_name_refused(self):
        self.assertRaises(FileNameRefused, self.receiving.start, offer_of(b"x", "CON"))
        self.assertRaises(FileNameRefused, self.receiving.start, offer_of(b"x", "n" * 300))
        self.assertEqual(os.listdir(self.directory), [])

    def test_hash_mismatch_deletes_partial(self):
        data = b"the real content"
        offer = Offer(transfer_id="t", name="a.txt", size=len(data), sha256="0" * 64)
        incoming = self.receiving.start(offer)
        incoming.write(0, data)
        with self.assertRaises(HashMismatch) as raised:
            incoming.finish()
        self.assertIn("'a.txt'", str(raised.exception))
        self.assertEqual(os.listdir(self.directory), [])
        self.assertIsNone(incoming.path)
        self.assertRaises(TransferError, incoming.write, len(data), b"")

    def test_resume_after_abandon(self):
        data = os.urandom(100_000)
        half = len(data) // 2
        incoming = self.receiving.start(offer_of(data, transfer_id="first"))
        incoming.write(0, data[:half])
        incoming.abandon()
        self.assertEqual(len(self.partials()), 1)

        again = self.receiving.start(offer_of(data, name="renamed.bin", transfer_id="second"))
        self.assertEqual(again.offset, half)
        self.assertRaises(OffsetMismatch, again.write, 0, data[:10])
        again.write(half, data[half:])
        path = again.finish()
        self.assertEqual(os.path.basename(path), "renamed.bin")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(self.partials(), [])

    def test_resume_in_another_receiving_directory_object(self):
        """The partial is found from the disk alone (e.g. after a restart)."""
        data = b"0123456789"
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data[:4])
        incoming.abandon()
        again = ReceivingDirectory(self.directory).start(offer_of(data))
        self.assertEqual(again.offset, 4)
        again.write(4, data[4:])
        self.assertEqual(again.finish(), os.path.join(self.directory, "report.pdf"))

    def test_resume_of_corrupt_partial_fails_hash_and_is_deleted(self):
        data = b"0123456789"
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data[:4])
        incoming.abandon()
        [partial] = self.partials()
        with open(os.path.join(self.directory, partial), "r+b") as f:
            f.write(b"XXXX")
        again = self.receiving.start(offer_of(data))
        again.write(4, data[4:])
        self.assertRaises(HashMismatch, again.finish)
        self.assertEqual(os.listdir(self.directory), [])

    def test_resume_complete_partial(self):
        data = b"all here"
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data)
        incoming.abandon()
        again = self.receiving.start(offer_of(data))
        self.assertEqual(again.offset, len(data))
        self.assertRaises(SizeMismatch, again.write, len(data), b"!")
        again.finish()

    def test_partial_longer_than_offer_restarts(self):
        data = b"abc"
        offer = offer_of(data)
        partial = os.path.join(self.directory, f".ponte-partial-{offer.sha256}-3")
        with open(partial, "wb") as f:
            f.write(b"too long")
        incoming = self.receiving.start(offer)
        self.assertEqual(incoming.offset, 0)
        incoming.write(0, data)
        with open(incoming.finish(), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_partial_named_after_content(self):
        data = b"abc"
        offer = offer_of(data)
        self.receiving.start(offer).abandon()
        self.assertEqual(self.partials(), [f".ponte-partial-{offer.sha256}-3"])

    def test_discard_removes_partial(self):
        data = b"secret stuff"
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data[:5])
        incoming.discard()
        self.assertEqual(os.listdir(self.directory), [])
        self.assertRaises(TransferError, incoming.write, 5, data[5:])
        self.assertRaises(TransferError, incoming.finish)
        incoming.discard()
        incoming.abandon()
        self.assertEqual(self.receiving.start(offer_of(data)).offset, 0)

    def test_discard_after_finish_keeps_file(self):
        incoming = self.receiving.start(offer_of(b"x"))
        incoming.write(0, b"x")
        path = incoming.finish()
        incoming.discard()
        self.assertTrue(os.path.exists(path))
        self.assertRaises(TransferError, incoming.finish)

    def test_discard_after_abandon_leaves_partial_to_its_new_owner(self):
        data = b"abcdef"
        first = self.receiving.start(offer_of(data))
        first.write(0, b"abc")
        first.abandon()
        second = self.receiving.start(offer_of(data))
        first.discard()
        second.write(3, b"def")
        second.finish()

    def test_no_overwrite(self):
        existing = os.path.join(self.directory, "a.txt")
        with open(existing, "wb") as f:
            f.write(b"keep me")
        first = self.receive(b"new one", name="a.txt")
        second = self.receive(b"newer one", name="a.txt")
        self.assertEqual(first, os.path.join(self.directory, "a (1).txt"))
        self.assertEqual(second, os.path.join(self.directory, "a (2).txt"))
        with open(existing, "rb") as f:
            self.assertEqual(f.read(), b"keep me")
        with open(first, "rb") as f:
            self.assertEqual(f.read(), b"new one")
        with open(second, "rb") as f:
            self.assertEqual(f.read(), b"newer one")

    def test_no_overwrite_without_extension_and_of_directories_and_links(self):
        os.mkdir(os.path.join(self.directory, "notes"))
        os.symlink("/nonexistent/target", os.path.join(self.directory, "notes (1)"))
        path = self.receive(b"n", name="notes")
        self.assertEqual(path, os.path.join(self.directory, "notes (2)"))
        self.assertFalse(os.path.exists("/nonexistent/target"))

    def test_no_overwrite_without_hard_links(self):
        """Where hard links are unsupported, the name is claimed exclusively first."""
        def no_link(source, destination):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        self.patch(os, "link", no_link)
        with open(os.path.join(self.directory, "a.txt"), "wb") as f:
            f.write(b"keep me")
        path = self.receive(b"new", name="a.txt")
        self.assertEqual(path, os.path.join(self.directory, "a (1).txt"))
        with open(os.path.join(self.directory, "a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"keep me")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"new")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(self.partials(), [])

    def test_out_of_order_chunk(self):
        data = b"0123456789"
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data[:5])
        with self.assertRaises(OffsetMismatch) as raised:
            incoming.write(7, data[7:])
        self.assertIn("starts at byte 7, the next byte expected is 5", str(raised.exception))
        self.assertRaises(OffsetMismatch, incoming.write, 0, data[:5])
        self.assertEqual(incoming.offset, 5)
        incoming.write(5, data[5:])
        incoming.finish()

    def test_oversize_chunk(self):
        data = b"0123456789"
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data[:8])
        with self.assertRaises(SizeMismatch) as raised:
            incoming.write(8, b"abc")
        self.assertIn("announced as 10 bytes", str(raised.exception))
        self.assertEqual(incoming.offset, 8)
        self.assertEqual(os.path.getsize(os.path.join(self.directory, self.partials()[0])), 8)

    def test_finish_incomplete(self):
        data = b"0123456789"
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data[:3])
        with self.assertRaises(SizeMismatch) as raised:
            incoming.finish()
        self.assertIn("3 of 10 bytes", str(raised.exception))
        incoming.write(3, data[3:])
        incoming.finish()

    def test_too_large_offer(self):
        receiving = ReceivingDirectory(self.directory, max_size=100)
        receiving.start(offer_of(b"x" * 100)).discard()
        with self.assertRaises(TooLarge) as raised:
            receiving.start(offer_of(b"x" * 101))
        self.assertIn("101 bytes, larger than the 100 bytes", str(raised.exception))
        self.assertEqual(os.listdir(self.directory), [])

    def test_default_limit_is_4_gib(self):
        huge = Offer(transfer_id="t", name="big", size=4 * 1024**3 + 1, sha256="0" * 64)
        self.assertRaises(TooLarge, self.receiving.start, huge)

    def test_negative_size(self):
        offer = Offer(transfer_id="t", name="a", size=-1, sha256="0" * 64)
        with self.assertRaises(TransferError) as raised:
            self.receiving.start(offer)
        self.assertIn("negative size", str(raised.exception))

    def test_concurrent_same_content_refused(self):
        data = b"same"
        first = self.receiving.start(offer_of(data, transfer_id="1"))
        with self.assertRaises(TransferError) as raised:
            self.receiving.start(offer_of(data, transfer_id="2"))
        self.assertIn("already being received", str(raised.exception))
        first.abandon()
        self.receiving.start(offer_of(data, transfer_id="3")).discard()

    def test_concurrent_same_content_from_another_object_refused(self):
        """Two programs sharing a directory: the partial file is locked."""
        self.assertIsNotNone(files.fcntl, "the agent and console run on POSIX systems, which have file locks")
        data = b"same"
        first = self.receiving.start(offer_of(data))
        with self.assertRaises(TransferError) as raised:
            ReceivingDirectory(self.directory).start(offer_of(data))
        self.assertIn("another program", str(raised.exception))
        first.discard()

    def test_different_content_concurrently(self):
        first = self.receiving.start(offer_of(b"one", name="same.txt"))
        second = self.receiving.start(offer_of(b"two", name="same.txt"))
        first.write(0, b"one")
        second.write(0, b"two")
        self.assertEqual(os.path.basename(second.finish()), "same.txt")
        self.assertEqual(os.path.basename(first.finish()), "same (1).txt")

    def test_disk_full(self):
        data = b"A" * 100 + b"B" * 100 + b"C" * 100
        incoming = self.receiving.start(offer_of(data))
        incoming.write(0, data[:100])
        real_write = os.write
        calls = []

        def full_write(fd, chunk):
            calls.append(len(chunk))
            if len(calls) == 1:
                return real_write(fd, bytes(chunk[:30]))  # A short write first...
            raise OSError(errno.ENOSPC, "No space left on device")  # ...then full.

        self.patch(os, "write", full_write)
        with self.assertRaises(DiskFull) as raised:
            incoming.write(100, data[100:200])
        self.assertIn("No space left on device", str(raised.exception))
        self.assertIn("'report.pdf'", str(raised.exception))
        self.assertEqual(calls, [100, 70])
        self.assertEqual(incoming.offset, 100)
        [partial] = self.partials()
        with open(os.path.join(self.directory, partial), "rb") as f:
            self.assertEqual(f.read(), data[:100])

        self.patch(os, "write", real_write)
        incoming.abandon()
        again = self.receiving.start(offer_of(data))
        self.assertEqual(again.offset, 100)
        again.write(100, data[100:])
        with open(again.finish(), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_disk_full_retry_same_chunk(self):
        data = b"0123456789"
        incoming = self.receiving.start(offer_of(data))
        real_write = os.write

        def full_write(fd, chunk):
            raise OSError(errno.EDQUOT, "Disk quota exceeded")

        self.patch(os, "write", full_write)
        self.assertRaises(DiskFull, incoming.write, 0, data)
        self.patch(os, "write", real_write)
        incoming.write(0, data)
        incoming.finish()

    def test_other_write_errors_pass_through(self):
        incoming = self.receiving.start(offer_of(b"abc"))

        def broken_write(fd, chunk):
            raise OSError(errno.EIO, "Input/output error")

        self.patch(os, "write", broken_write)
        with self.assertRaises(OSError) as raised:
            incoming.write(0, b"abc")
        self.assertNotIsInstance(raised.exception, DiskFull)
        self.assertEqual(raised.exception.errno, errno.EIO)
        incoming.discard()

    def test_disk_full_when_creating_partial(self):
        def full_open(path, flags, mode=0o777):
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(os, "open", full_open)
        self.assertRaises(DiskFull, self.receiving.start, offer_of(b"x"))

    def test_partial_that_is_not_a_file(self):
        offer = offer_of(b"x")
        os.mkdir(os.path.join(self.directory, f".ponte-partial-{offer.sha256}-1"))
        with self.assertRaises(TransferError) as raised:
            self.receiving.start(offer)
        self.assertIn("not a regular file", str(raised.exception))

    def test_partial_symlink_not_followed(self):
        target = os.path.abspath(self.mktemp())
        with open(target, "wb") as f:
            f.write(b"victim")
        offer = offer_of(b"x")
        os.symlink(target, os.path.join(self.directory, f".ponte-partial-{offer.sha256}-1"))
        self.assertRaises(TransferError, self.receiving.start, offer)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"victim")

    def test_descriptors_closed_on_every_path(self):
        self.assertTrue(os.path.isdir("/proc/self/fd"), "this test counts descriptors in /proc/self/fd (Linux)")
        before = open_fds()

        self.receive(b"finished")

        incoming = self.receiving.start(offer_of(b"abandoned"))
        incoming.write(0, b"aban")
        incoming.abandon()

        self.receiving.start(offer_of(b"discarded")).discard()

        bad = Offer(transfer_id="t", name="bad", size=3, sha256="0" * 64)
        incoming = self.receiving.start(bad)
        incoming.write(0, b"bad")
        self.assertRaises(HashMismatch, incoming.finish)

        os.mkdir(os.path.join(self.directory, f".ponte-partial-{'1' * 64}-1"))
        dir_offer = Offer(transfer_id="t", name="d", size=1, sha256="1" * 64)
        self.assertRaises(TransferError, self.receiving.start, dir_offer)

        outgoing = Outgoing.open(self.receive(b"out", name="out"), "t")
        list(outgoing.chunks(0))
        outgoing.close()

        self.assertEqual(open_fds(), before)


class OutgoingTests(unittest.TestCase):
    def make_file(self, data, name="sent.bin"):
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_offer(self):
        data = os.urandom(3 * 1024 * 1024 + 7)
        outgoing = Outgoing.open(self.make_file(data, "photo.jpg"), "t42")
        self.addCleanup(outgoing.close)
        self.assertEqual(
            outgoing.offer,
            Offer(
                transfer_id="t42",
                name="photo.jpg",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            ),
        )

    def test_chunks_reassemble(self):
        data = os.urandom(5 * CHUNK_SIZE + 123)
        outgoing = Outgoing.open(self.make_file(data), "t")
        self.addCleanup(outgoing.close)
        chunks = list(outgoing.chunks(0))
        self.assertEqual(len(chunks), 6)
        self.assertTrue(all(len(chunk) <= 60 * 1024 for _, chunk in chunks))
        self.assertEqual(chunks[0][0], 0)
        for (offset, chunk), (next_offset, _) in zip(chunks, chunks[1:]):
            self.assertEqual(offset + len(chunk), next_offset)
        self.assertEqual(b"".join(chunk for _, chunk in chunks), data)

    def test_chunks_from_offset_and_smaller_size(self):
        data = os.urandom(10_000)
        outgoing = Outgoing.open(self.make_file(data), "t")
        self.addCleanup(outgoing.close)
        chunks = list(outgoing.chunks(4_000, chunk_size=1_000))
        self.assertEqual([offset for offset, _ in chunks], list(range(4_000, 10_000, 1_000)))
        self.assertEqual(b"".join(chunk for _, chunk in chunks), data[4_000:])
        self.assertEqual(list(outgoing.chunks(10_000)), [])

    def test_chunk_size_limit(self):
        outgoing = Outgoing.open(self.make_file(b"x"), "t")
        self.addCleanup(outgoing.close)
        self.assertRaises(ValueError, outgoing.chunks, 0, 60 * 1024 + 1)
        self.assertRaises(ValueError, outgoing.chunks, 0, 0)

    def test_bad_resume_offset(self):
        """The receiver chooses the offset; a hostile one is refused at once."""
        outgoing = Outgoing.open(self.make_file(b"abc"), "t")
        self.addCleanup(outgoing.close)
        self.assertRaises(OffsetMismatch, outgoing.chunks, -1)
        self.assertRaises(OffsetMismatch, outgoing.chunks, 4)

    def test_file_shrinks_while_sending(self):
        path = self.make_file(b"x" * 100)
        outgoing = Outgoing.open(path, "t")
        self.addCleanup(outgoing.close)
        os.truncate(path, 50)
        chunks = outgoing.chunks(0, chunk_size=40)
        self.assertEqual(next(chunks), (0, b"x" * 40))
        self.assertEqual(next(chunks), (40, b"x" * 10))
        self.assertRaises(SizeMismatch, next, chunks)

    def test_not_a_regular_file(self):
        directory = self.mktemp()
        os.mkdir(directory)
        fifo = os.path.join(directory, "fifo")
        self.assertRaises(OSError, Outgoing.open, directory, "t")
        if hasattr(os, "mkfifo"):
            os.mkfifo(fifo)
            # Opened for reading and writing so that opening does not wait for a writer.
            keep = os.open(fifo, os.O_RDWR)
            self.addCleanup(os.close, keep)
            with self.assertRaises(TransferError) as raised:
                Outgoing.open(fifo, "t")
            self.assertIn("not a regular file", str(raised.exception))

    def test_round_trip(self):
        data = os.urandom(200_000)
        outgoing = Outgoing.open(self.make_file(data, "doc.odt"), "t")
        self.addCleanup(outgoing.close)
        receiving = ReceivingDirectory(self.mktemp())
        incoming = receiving.start(outgoing.offer)
        for offset, chunk in outgoing.chunks(0):
            incoming.write(offset, chunk)
            if offset >= 100_000:
                incoming.abandon()
                break
        incoming = receiving.start(outgoing.offer)
        for offset, chunk in outgoing.chunks(incoming.offset):
            incoming.write(offset, chunk)
        with open(incoming.finish(), "rb") as f:
            self.assertEqual(f.read(), data)
