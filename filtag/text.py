"""Text that can always be written: names that are not UTF-8, escaped.

A folder name that is not valid UTF-8 (the bytes ``caf\\xe9``) is held by
Python as a lone surrogate (``os.fsdecode``); it cannot be printed, written as
UTF-8 or shown by plotly. filtag's pickles keep such names unchanged; text
files, pages, figures and printed output show them as ``caf\\xe9``.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """Return ``text`` with the bytes that are not UTF-8 written as ``\\xNN``.

    Text that is valid UTF-8 is returned unchanged.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no file name holds
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
