"""Scrub what looks like personal data out of strings: defence in depth behind the snippet.

The snippet never sends input values, and it drops query values from URLs. Pages still leak:
an e-mail address in a path (``/account/jane@example.com``), a card number in an error message,
a phone number in a selector. The collector runs every string of a batch's string table
through :func:`scrub_text` before the batch is stored, so such values never reach the disk.

What is replaced, in this order:

* ``[email]``: an e-mail address (also with ``@`` percent-encoded as ``%40``);
* ``[card]``: 13 to 19 digits, optionally grouped by spaces or dashes, that pass the Luhn check;
* ``[phone]``: a phone-like group of digits: a ``+`` and 7 to 15 digits, or 9 to 15 digits in
  2 to 5 groups separated by spaces, dots, dashes or parentheses;
* ``[digits]``: any other run of 9 or more digits (account, order and national id numbers).

A string that is already a *shape* (every letter ``a``/``A``, every digit ``9``, as the
snippet writes for typed values) carries nothing to scrub and is kept as it is, so form
analytics still sees ``+99 999 99 999``.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MIN_DIGIT_RUN", "is_shape", "luhn_ok", "mask_bytes", "scrub_text"]

#: A run of this many digits or more is replaced by ``[digits]`` (order and account numbers,
#: national ids). Shorter runs (years, prices, product ids) are kept.
MIN_DIGIT_RUN: Final = 9

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d(?:[\s().-]{0,2}\d){6,14}(?!\d)")
_PHONE = re.compile(r"(?<![\w.])\(?\d{2,5}\)?(?:[\s.-]\(?\d{2,5}\)?){1,4}(?![\w])")
_DIGITS = re.compile(rf"\d{{{MIN_DIGIT_RUN},}}")
_SHAPE = re.compile(r"[aA9\W_]*")
# Nothing can match unless the string holds an "@" (or "%40") or at least 7 digits.
_MAYBE = re.compile(r"@|%40|\d(?:\D*\d){6}")
_CACHE: dict[str, str] = {}
_CACHE_MAX: Final = 200_000


def luhn_ok(digits: str) -> bool:
    """True when a string of digits passes the Luhn checksum (as card numbers do)."""
    total = 0
    for k, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if k % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_shape(s: str) -> bool:
    """True when ``s`` is a shape: letters only ``a``/``A``, digits only ``9``."""
    return _SHAPE.fullmatch(s) is not None


def _card(m: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", m.group(0))
    return "[card]" if luhn_ok(digits) else m.group(0)


def _phone(m: re.Match[str]) -> str:
    n = sum(ch.isdigit() for ch in m.group(0))
    return "[phone]" if 9 <= n <= 15 else m.group(0)


def scrub_text(s: str) -> str:
    """``s`` with e-mail addresses, card numbers, phone numbers and long digit runs replaced.

    >>> scrub_text("/account/jane.doe@example.com/orders")
    '/account/[email]/orders'
    >>> scrub_text("card 4111 1111 1111 1111 declined")
    'card [card] declined'
    >>> scrub_text("+99 999 99 999")  # a shape: kept
    '+99 999 99 999'
    """
    if _MAYBE.search(s) is None:
        return s
    hit = _CACHE.get(s)
    if hit is not None:
        return hit
    out = s
    if not is_shape(s):
        out = _EMAIL.sub("[email]", out)
        out = _CARD.sub(_card, out)
        out = _PHONE_INTL.sub("[phone]", out)
        out = _PHONE.sub(_phone, out)
        out = _DIGITS.sub("[digits]", out)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[s] = out
    return out


_B_EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_B_DIGITS = re.compile(rb"\d(?:[ ().-]{0,2}\d){%d,}" % (MIN_DIGIT_RUN - 1))


def mask_bytes(data: bytes) -> bytes:
    """``data`` with e-mail-like and long-digit ASCII runs overwritten *in place* (same length).

    For batches that cannot be parsed (and so cannot be scrubbed string by string) before they
    go to quarantine: the length and every byte offset stay as they were, so a quarantine
    reason's offset still points at the right place.
    """
    data = _B_EMAIL.sub(lambda m: b"*" * len(m.group(0)), data)
    return _B_DIGITS.sub(lambda m: re.sub(rb"\d", b"#", m.group(0)), data)
