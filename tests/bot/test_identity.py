from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.errors import InvalidToken
from bot.identity import (
    issue_customer_token,
    new_visitor_id,
    sign_visitor,
    verify_customer_token,
    verify_visitor,
)

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)
YEAR = timedelta(days=365)


def test_visitor_token_round_trip() -> None:
    vid = new_visitor_id()
    token = sign_visitor(vid, key="k", clock=lambda: NOW)
    assert verify_visitor(token, key="k", max_age=YEAR, clock=lambda: NOW) == vid


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature
        lambda t: t.replace("v1.", "v1.0", 1),  # visitor id
        lambda t: "garbage",
        lambda t: "",
        lambda t: t + "." + "x" * 300,
    ],
)
def test_visitor_token_tampering_is_refused(mutate: object) -> None:
    token = sign_visitor(new_visitor_id(), key="k", clock=lambda: NOW)
    with pytest.raises(InvalidToken):
        verify_visitor(mutate(token), key="k", max_age=YEAR, clock=lambda: NOW)  # type: ignore[operator]


def test_visitor_token_other_key_and_expiry() -> None:
    token = sign_visitor(new_visitor_id(), key="k", clock=lambda: NOW)
    with pytest.raises(InvalidToken):
        verify_visitor(token, key="other", max_age=YEAR, clock=lambda: NOW)
    with pytest.raises(InvalidToken):
        verify_visitor(token, key="k", max_age=YEAR, clock=lambda: NOW + YEAR + timedelta(1))


def test_customer_token_round_trip_and_expiry() -> None:
    token = issue_customer_token("C00001", key="s", ttl=timedelta(hours=1), clock=lambda: NOW)
    claim = verify_customer_token(token, key="s", clock=lambda: NOW)
    assert claim.external_id == "C00001"
    with pytest.raises(InvalidToken):
        verify_customer_token(token, key="s", clock=lambda: NOW + timedelta(hours=2))
    with pytest.raises(InvalidToken):
        verify_customer_token(token, key="wrong", clock=lambda: NOW)


def test_customer_token_cannot_be_retargeted() -> None:
    token = issue_customer_token("C00001", key="s", clock=lambda: NOW)
    forged = "C00002" + token[len("C00001") :]
    with pytest.raises(InvalidToken):
        verify_customer_token(forged, key="s", clock=lambda: NOW)
