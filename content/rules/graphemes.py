"""Grapheme clusters as ICU counts them (what Bluesky's ``graphemeLength`` uses).

The ``regex`` module's ``\\X`` joins a virama to the consonant after it even where no
consonant stands before the virama ("\u094d\u0915" is one cluster for it, two for
ICU and for Unicode's rule GB9c).  So the extended grapheme cluster is spelt out here
from UAX #29's own regular definition (table 1b), with the properties ``regex``
knows, Indic_Conjunct_Break included.  Plain ASCII takes a shortcut.
"""

from __future__ import annotations

import regex

__all__ = ["grapheme_count"]

_CONTROL = r"[\p{GCB=Control}\p{GCB=CR}\p{GCB=LF}]"
_HANGUL = (r"(?:\p{GCB=L}*(?:\p{GCB=V}+|\p{GCB=LV}\p{GCB=V}*|\p{GCB=LVT})\p{GCB=T}*"
           r"|\p{GCB=L}+|\p{GCB=T}+)")
_RI_PAIR = r"\p{GCB=Regional_Indicator}{2}"
_PICTOGRAPHIC = r"\p{Extended_Pictographic}(?:\p{GCB=Extend}*\p{GCB=ZWJ}\p{Extended_Pictographic})*"
_LINKERS = r"[\p{InCB=Extend}\p{InCB=Linker}]*\p{InCB=Linker}[\p{InCB=Extend}\p{InCB=Linker}]*"
_CONJUNCT = rf"\p{{InCB=Consonant}}(?:{_LINKERS}\p{{InCB=Consonant}})+"
_CORE = rf"(?:{_HANGUL}|{_RI_PAIR}|{_PICTOGRAPHIC}|{_CONJUNCT}|[^\p{{GCB=Control}}\p{{GCB=CR}}\p{{GCB=LF}}])"
_CLUSTER = regex.compile(
    rf"\r\n|{_CONTROL}|\p{{GCB=Prepend}}*{_CORE}[\p{{GCB=Extend}}\p{{GCB=ZWJ}}\p{{GCB=SpacingMark}}]*"
)


def grapheme_count(text: str) -> int:
    """How many extended grapheme clusters ``text`` has."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return len(_CLUSTER.findall(text))
