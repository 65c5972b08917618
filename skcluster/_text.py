"""Text from files and other programs, made safe to print on a terminal."""

from __future__ import annotations

__all__ = ["printable"]


def printable(text, limit=2000):
    """``text`` on one line with every control character escaped, at most ``limit`` characters.

    Terminal escape sequences (``ESC [ ...``, OSC clipboard writes), carriage
    returns, backspaces and the like in a message that quotes a file or a
    library become visible ``\\x1b``-style escapes, so a crafted file cannot
    erase lines or forge output; runs of whitespace become one space.

    Parameters
    ----------
    text : str
    limit : int, default=2000
        Longer text is cut, ending in ``...``.

    Returns
    -------
    str
    """
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch in "\t\n\r\v\f":
            out.append(" ")
        elif code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    text = " ".join("".join(out).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
