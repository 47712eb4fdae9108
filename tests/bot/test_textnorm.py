"""The engine's normaliser and language detector are stdlib-only and shared with the
gateway, so they are tested here too."""

from __future__ import annotations

import pytest

from engine.language import detect_language
from engine.textnorm import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("我的訂單到哪了", "我的订单到哪了"),
        ("５３８８７２９５３７１１", "538872953711"),
        ("ＸＬ碼", "XL码"),
        ("hello\u3000there\tnow", "hello there now"),
        ("😂👍", "😂👍"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert len(normalize(raw)) == len(raw)  # entity offsets survive


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我的订单到哪了", "zh"),
        ("where is my order", "en"),
        ("我的order到哪了", "zh"),
        ("ok", "en"),
        ("538872953711", None),
        ("👍", None),
        ("a", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language
