"""Which language a shopper writes in: "zh", "en", or None when the text does not say
(digits, emoji, a single letter). Standard library only; the gateway uses it too."""

from __future__ import annotations


def detect_language(text: str) -> str | None:
    cjk = latin = 0
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf":
            cjk += 1
        elif ("a" <= ch <= "z") or ("A" <= ch <= "Z"):
            latin += 1
    if cjk:
        # A few Chinese characters decide it: "我的order到哪了" is Chinese.
        return "zh" if cjk * 3 >= min(latin, 12) else "en"
    if latin >= 2:
        return "en"
    return None
