"""Checks the held-out personal-data set (tests/data/pii_messages.yml) itself.

This tests the data, not any masking code: spans are substrings of their message, ID numbers
carry a valid checksum, card numbers pass Luhn, every kind is well represented, and there are
enough messages without personal data and enough English ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

SET_PATH = Path(__file__).resolve().parents[1] / "data" / "pii_messages.yml"
KINDS = {"phone", "id_number", "bank_card", "email", "address"}
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def _digits(text: str) -> str:
    """Fold full-width characters and drop spaces, line breaks and dashes."""
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", text)).upper()


def id_checksum_ok(text: str) -> bool:
    value = _digits(text)
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == value[17]


def luhn_ok(text: str) -> bool:
    value = _digits(text)
    if not value.isdigit() or not 16 <= len(value) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(value)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@pytest.fixture(scope="module")
def pii_set() -> dict[str, Any]:
    with SET_PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def messages(pii_set: dict[str, Any]) -> list[dict[str, Any]]:
    return pii_set["messages"]


def test_checksum_helpers() -> None:
    assert id_checksum_ok("11010519491231002X")
    assert id_checksum_ok("１１０１０５１９４９１２３１００２x")
    assert not id_checksum_ok("110105194912310021")
    assert luhn_ok("4111 1111 1111 1111")
    assert luhn_ok("４１１１-１１１１-１１１１-１１１１")
    assert not luhn_ok("4111 1111 1111 1112")


def test_header(pii_set: dict[str, Any]) -> None:
    assert pii_set["version"] == 1
    assert "demo seed" in pii_set["order_numbers_from"]


def test_size_and_shape(messages: list[dict[str, Any]]) -> None:
    assert len(messages) >= 1000
    ids = [m["id"] for m in messages]
    assert len(ids) == len(set(ids))
    for m in messages:
        assert isinstance(m["text"], str) and m["text"].strip(), m
        assert m["lang"] in ("zh", "en"), m
        assert isinstance(m["spans"], list), m
        for span in m["spans"]:
            assert set(span) == {"kind", "text"}, m
            assert span["kind"] in KINDS, m


def test_spans_occur_in_their_message(messages: list[dict[str, Any]]) -> None:
    for m in messages:
        for span in m["spans"]:
            assert span["text"], m
            assert span["text"] in m["text"], (m["id"], span)
            assert span["text"] == span["text"].strip(), (m["id"], span)


def test_id_numbers_pass_the_checksum(messages: list[dict[str, Any]]) -> None:
    spans = [s for m in messages for s in m["spans"] if s["kind"] == "id_number"]
    bad = [s["text"] for s in spans if not id_checksum_ok(s["text"])]
    assert not bad


def test_bank_cards_pass_luhn(messages: list[dict[str, Any]]) -> None:
    spans = [s for m in messages for s in m["spans"] if s["kind"] == "bank_card"]
    bad = [s["text"] for s in spans if not luhn_ok(s["text"])]
    assert not bad


def test_counts_per_kind(messages: list[dict[str, Any]]) -> None:
    counts = Counter(s["kind"] for m in messages for s in m["spans"])
    for kind in KINDS:
        assert counts[kind] >= 60, (kind, counts)


def test_enough_messages_without_personal_data(messages: list[dict[str, Any]]) -> None:
    empty = sum(1 for m in messages if not m["spans"])
    assert empty / len(messages) >= 0.35


def test_enough_english(messages: list[dict[str, Any]]) -> None:
    english = sum(1 for m in messages if m["lang"] == "en")
    assert english / len(messages) >= 0.25
