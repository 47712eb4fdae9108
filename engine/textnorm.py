"""Text normalisation shared by the NLU pipeline and the gateway (stdlib + OpenCC only).

Length-preserving on purpose: every character maps to exactly one character, so entity
offsets annotated on the original text stay valid on the normalised text.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

try:  # OpenCC (pure-Python reimplementation) is in both environments' lock files.
    from opencc import OpenCC

    _T2S = OpenCC("t2s")
except ImportError:  # pragma: no cover - both environments install it
    _T2S = None


@lru_cache(maxsize=8192)
def _char(ch: str) -> str:
    if ch.isspace():
        return " "
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) != 1:
        return ch
    if _T2S is not None and "\u4e00" <= folded <= "\u9fff":
        simplified = _T2S.convert(folded)
        if len(simplified) == 1:
            return simplified
    return folded


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII), traditional to simplified Chinese, and
    every kind of white space to a plain space — one character for one character."""
    return "".join(_char(ch) for ch in text)
