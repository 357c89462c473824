"""Numbers as portals publish them: '1.234.567,5', '1,234,567.5', '12 345', '-3,2', '' (empty)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# What is left once the declared separators are removed: ASCII digits, one '.', an optional exponent.
# Python's float() also takes '5_0000', 'nan', 'inf' and non-ASCII digits; none of them is a number here.
_PLAIN = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_GERMAN = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$|^[+-]?\d+,\d+$")
_ENGLISH = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$|^[+-]?\d+\.\d+$")


def shown(text: str, limit: int = 40) -> str:
    """A cell or name as messages show it: escaped (repr) and cut to `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _grouped(integer_part: str, sep: str) -> bool:
    return re.fullmatch(r"[+-]?\d{1,3}(" + re.escape(sep) + r"\d{3})+", integer_part) is not None


@dataclass(frozen=True)
class NumberFormat:
    decimal: str = "."
    thousands: str = ""

    def parse(self, text: str) -> float:
        """Parse one value; raises ValueError with the offending text."""
        cleaned = text.strip().replace("\u00a0", " ")
        integer_part, _, fraction = cleaned.partition(self.decimal)
        for sep in {self.thousands, " ", "'"} - {""}:
            # A separator is only a thousands separator where it splits off groups of three digits;
            # anywhere else ('1.5' read with decimal ',') dropping it would change the value.
            if sep in fraction or (sep in integer_part and not _grouped(integer_part, sep)):
                raise ValueError(f"{shown(text)} is not a number with decimal {self.decimal!r} "
                                 f"and thousands {self.thousands!r}")
        if self.thousands:
            cleaned = cleaned.replace(self.thousands, "")
        cleaned = cleaned.replace(" ", "").replace("'", "")
        if self.decimal == ",":
            if "." in cleaned:
                raise ValueError(f"{shown(text)} has '.' but the decimal separator is ','")
            cleaned = cleaned.replace(",", ".")
        elif "," in cleaned:
            raise ValueError(f"{shown(text)} has ',' but the decimal separator is '.'")
        if not _PLAIN.fullmatch(cleaned):
            raise ValueError(f"{shown(text)} is not a number")
        return float(cleaned)


def detect_number_format(samples: Iterable[str], delimiter: str | None = None) -> NumberFormat:
    """Guess decimal and thousands separators from sample values.

    Evidence wins over the delimiter hint: '1.234,5' means decimal comma; '1,234.5' decimal point.
    Ambiguous samples like '1,234' are read with the convention of the delimiter (';' -> comma).
    """
    german = english = 0
    for value in samples:
        text = value.strip()
        if _GERMAN.match(text) and not _ENGLISH.match(text):
            german += 1
        elif _ENGLISH.match(text) and not _GERMAN.match(text):
            english += 1
    if german > english:
        return NumberFormat(decimal=",", thousands=".")
    if english > german:
        return NumberFormat(decimal=".", thousands=",")
    if delimiter == ";":
        return NumberFormat(decimal=",", thousands=".")
    return NumberFormat(decimal=".", thousands="")
