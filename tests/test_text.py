"""skcluster._text.printable: messages from files made safe for a terminal."""

from skcluster._text import printable


def test_control_characters_are_escaped_and_whitespace_is_one_space():
    forged = "bad file\x1b]52;c;ZXZpbA==\x07\x1b[2K\x1b[1A\r\nwrote 20 masses\tto 'x.csv'\x00\u202e"
    out = printable(forged)
    assert out == ("bad file\\x1b]52;c;ZXZpbA==\\x07\\x1b[2K\\x1b[1A wrote 20 masses to 'x.csv'\\x00\\u202e")
    assert out.isprintable()


def test_ordinary_text_is_unchanged_and_long_text_is_cut():
    assert printable("M500c = 3e14 Msun (é, ü)") == "M500c = 3e14 Msun (é, ü)"
    long = printable("x" * 5000, limit=100)
    assert len(long) == 100 and long.endswith("...")
