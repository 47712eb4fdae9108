"""Retention (bot/privacy/retention.py), on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.models import Conversation, Message
from bot.models.handoff import Csat, Ticket
from bot.models.privacy import AuditEvent
from bot.privacy.retention import apply_retention, due, run
from tests.bot.test_erasure import FakeTrackers, canary_hits, chat, new_customer
from tests.conftest import FIXED_NOW

LATER = FIXED_NOW + timedelta(days=400)


def _clock(at=LATER):  # type: ignore[no-untyped-def]
    return lambda: at


def _age(session: Session, cid: str, days: int) -> None:
    session.execute(
        update(Conversation)
        .where(Conversation.id == cid)
        .values(last_message_at=LATER - timedelta(days=days))
    )


def test_old_closed_transcripts_go_and_the_figures_stay(session: Session) -> None:
    trackers = FakeTrackers()
    customer = new_customer(session, "Retained")
    canary_old, canary_new, canary_open, canary_quiet = (
        f"RT{secrets.token_hex(4)}" for _ in range(4)
    )
    old = chat(session, customer, canary_old, trackers=trackers)
    recent = chat(session, customer, canary_new, trackers=trackers)
    still_open = chat(session, customer, canary_open, close=False, trackers=trackers)
    # With a person, however long: never touched. The bot's, long quiet: it has ended.
    session.execute(update(Conversation).where(Conversation.id == still_open).values(state="agent"))
    quiet = chat(session, customer, canary_quiet, close=False, trackers=trackers)
    _age(session, old, 366)
    _age(session, recent, 364)
    _age(session, still_open, 900)
    _age(session, quiet, 400)
    intents_before = session.scalars(
        select(Message.intent).where(Message.conversation_id == old).order_by(Message.id)
    ).all()

    assert old in due(session=session, days=365, clock=_clock())
    report = apply_retention(session=session, days=365, trackers=trackers, clock=_clock())

    assert report.conversations >= 2 and old in trackers.erased and quiet in trackers.erased
    assert canary_hits(session, canary_quiet) == []
    assert recent not in trackers.erased and still_open not in trackers.erased
    assert canary_hits(session, canary_old) == []
    assert canary_hits(session, canary_new) and canary_hits(session, canary_open)
    messages = session.scalars(select(Message).where(Message.conversation_id == old)).all()
    assert messages and all(m.text == "" and m.entities is None for m in messages)
    # The rows and their figures stay: intents, latencies, the conversation itself.
    assert [m.intent for m in sorted(messages, key=lambda m: m.id)] == intents_before
    assert session.get(Conversation, old) is not None
    ticket = session.scalars(select(Ticket).where(Ticket.conversation_id == old)).one()
    assert ticket.note is None and ticket.callback_phone is None and ticket.reason == "callback"
    csat = session.scalars(select(Csat).where(Csat.conversation_id == old)).one()
    assert csat.comment is None

    # Idempotent: nothing is due any more, a second run changes nothing.
    assert old not in due(session=session, days=365, clock=_clock())
    erased_before = len(trackers.erased)
    apply_retention(session=session, days=365, trackers=trackers, clock=_clock())
    assert old not in trackers.erased[erased_before:]


def test_zero_days_keeps_everything(session: Session) -> None:
    trackers = FakeTrackers()
    customer = new_customer(session, "Forever")
    cid = chat(session, customer, "FOREVER1", trackers=trackers)
    _age(session, cid, 5000)
    report = apply_retention(session=session, days=0, trackers=trackers, clock=_clock())
    assert report.conversations == 0 and trackers.erased == []
    assert canary_hits(session, "FOREVER1")


def test_nothing_changes_when_the_engine_cannot_erase(session: Session) -> None:
    customer = new_customer(session, "EngineDown")
    cid = chat(session, customer, "ENGDOWN1")
    _age(session, cid, 1000)
    nested = session.begin_nested()
    try:
        apply_retention(session=session, days=30, trackers=FakeTrackers(fail=True), clock=_clock())
    except Exception as exc:
        assert exc.__class__.__name__ == "TrackerStoreUnavailable"
    else:
        raise AssertionError("retention went on without Rasa's trackers")
    nested.rollback()
    assert canary_hits(session, "ENGDOWN1")


def test_the_run_is_audit_logged_with_counts_only(session: Session) -> None:
    trackers = FakeTrackers()
    customer = new_customer(session, "Audited")
    cid = chat(session, customer, "AUDITED1", trackers=trackers)
    _age(session, cid, 800)
    session.flush()
    # Units of work of the run nest inside the test's transaction (rolled back after).
    factory = sessionmaker(
        bind=session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    total = run(session_factory=factory, days=365, trackers=trackers, clock=_clock())
    assert total.conversations >= 1 and cid in trackers.erased
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "retention").order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None and event.actor == "system" and event.customer_id is None
    assert event.detail == total.to_dict()
    assert set(event.detail) == {"days", "conversations", "messages", "rows", "tracker_events"}
    assert canary_hits(session, "AUDITED1") == []
    # A second run finds nothing and logs nothing.
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    assert (
        run(session_factory=factory, days=365, trackers=trackers, clock=_clock()).conversations == 0
    )
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_the_command_line_says_when_retention_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["retention", "--days", "0"]) == 0
    assert "off" in capsys.readouterr().out


def test_the_command_line_fails_clearly_without_rasa(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import cli
    from bot.privacy import retention
    from bot.privacy.erasure import TrackerStoreUnavailable

    def unreachable(**_: object) -> None:
        raise TrackerStoreUnavailable("engine unreachable (erase)")

    monkeypatch.setattr(retention, "run", unreachable)
    assert cli.main(["retention", "--days", "30"]) == 1
    err = capsys.readouterr().err
    assert "engine unreachable" in err and "run it again later" in err
