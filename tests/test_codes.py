"""Session codes: alphabet, normalisation, splitting, display."""

import collections

from twisted.trial import unittest

from wire import codes


class CodeTests(unittest.TestCase):
    def test_alphabet_has_no_ambiguous_letters(self):
        """Crockford's alphabet: 32 symbols, no I, L, O, U."""
        self.assertEqual(len(set(codes.ALPHABET)), 32)
        for letter in "ILOU":
            self.assertNotIn(letter, codes.ALPHABET)

    def test_normalise_ignores_case_spaces_and_dashes(self):
        self.assertEqual(codes.normalise(" k7qm-4xz "), "K7QM4XZ")
        self.assertEqual(codes.normalise("k7 qm\t4-x-z"), "K7QM4XZ")

    def test_normalise_maps_confusable_letters(self):
        """I and L read as 1, O as 0; U is not a code character."""
        self.assertEqual(codes.normalise("iLo"), "110")
        self.assertRaises(codes.InvalidCode, codes.normalise, "U")

    def test_normalise_rejects_other_characters(self):
        with self.assertRaises(codes.InvalidCode) as raised:
            codes.normalise("K7QM*4XZ")
        self.assertIn("'*'", str(raised.exception))

    def test_split(self):
        self.assertEqual(codes.split("k7qm-4xz", 4, 3), ("K7QM", "4XZ"))
        self.assertEqual(codes.split("ABCDE-FGHJK", 5, 5), ("ABCDE", "FGHJK"))

    def test_split_wrong_length_says_how_long(self):
        with self.assertRaises(codes.InvalidCode) as raised:
            codes.split("K7QM-4X", 4, 3)
        self.assertEqual(str(raised.exception), "a session code has 7 characters, this one has 6")

    def test_display(self):
        self.assertEqual(codes.display("k7qm4xz"), "K7QM-4XZ")

    def test_random_part_uses_whole_alphabet(self):
        """Parts are drawn from the alphabet, every symbol appearing."""
        counts = collections.Counter("".join(codes.random_part(4) for _ in range(2000)))
        self.assertEqual(set(counts), set(codes.ALPHABET))
        # 8000 draws over 32 symbols: 250 expected each; far outside would be a bias.
        self.assertTrue(all(150 < n < 350 for n in counts.values()), counts)

    def test_fingerprint_is_short_and_not_the_code(self):
        tag = codes.fingerprint("K7QM")
        self.assertEqual(len(tag), 10)
        self.assertNotIn("K7QM", tag)
        self.assertEqual(tag, codes.fingerprint("K7QM"))
        self.assertNotEqual(tag, codes.fingerprint("K7QN"))
