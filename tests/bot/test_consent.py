"""Marketing consent and the audit log (bot.services.consent, bot.services.audit)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import InvalidInput
from bot.models import Customer, Order, Staff
from bot.models.privacy import AuditEvent, Consent
from bot.privacy.export import export_customer
from bot.services import audit, consent
from bot.services.consent import CustomerNotFound

START = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def ticking(start: datetime = START) -> Callable[[], datetime]:
    """A clock that moves a minute each time it is read."""
    now = [start]

    def clock() -> datetime:
        now[0] += timedelta(minutes=1)
        return now[0]

    return clock


def customers(session: Session, n: int = 3) -> list[int]:
    return list(session.scalars(select(Customer.id).order_by(Customer.id).limit(n)))


def a_staff_id(session: Session) -> int:
    staff = session.scalars(select(Staff).limit(1)).first()
    if staff is None:
        staff = Staff(
            email="consent-agent@example.com",
            name="Agent",
            role="agent",
            password_hash="x",
            created_at=START,
            password_changed_at=START,
        )
        session.add(staff)
        session.flush()
    return staff.id


def test_nobody_has_consented_until_they_say_so(session: Session) -> None:
    (cid,) = customers(session, 1)
    assert consent.current(session=session, customer_id=cid) is None
    assert not consent.has_marketing_consent(session=session, customer_id=cid)
    assert cid not in consent.consenting_customer_ids(session=session)


def test_grant_then_withdraw_takes_effect_at_once_everywhere(session: Session) -> None:
    alice, bob, _ = customers(session)
    clock = ticking()
    consent.grant(session=session, customer_id=alice, source="widget", clock=clock)
    consent.grant(session=session, customer_id=bob, source="widget", clock=clock)
    assert consent.has_marketing_consent(session=session, customer_id=alice)
    assert {alice, bob} <= consent.consenting_customer_ids(session=session)
    in_segment = select(Customer.id).where(
        Customer.id.in_([alice, bob]), consent.marketing_consent_clause()
    )
    assert set(session.scalars(in_segment)) == {alice, bob}

    view = consent.withdraw(session=session, customer_id=alice, source="widget", clock=clock)
    assert view.granted is False
    assert not consent.has_marketing_consent(session=session, customer_id=alice)
    assert consent.consenting_customer_ids(session=session, customer_ids={alice, bob}) == {bob}
    assert set(session.scalars(in_segment)) == {bob}


def test_history_is_kept_and_the_latest_row_wins(session: Session) -> None:
    (cid,) = customers(session, 1)
    clock = ticking()
    consent.grant(session=session, customer_id=cid, source="import", clock=clock)
    consent.withdraw(session=session, customer_id=cid, source="widget", clock=clock)
    consent.grant(session=session, customer_id=cid, source="widget", clock=clock)
    rows = consent.history(session=session, customer_id=cid)
    assert [(r.granted, r.source) for r in rows] == [
        (True, "import"),
        (False, "widget"),
        (True, "widget"),
    ]
    assert consent.has_marketing_consent(session=session, customer_id=cid)


def test_same_time_rows_are_ordered_by_id(session: Session) -> None:
    (cid,) = customers(session, 1)

    def still() -> datetime:
        return START

    consent.grant(session=session, customer_id=cid, source="widget", clock=still)
    consent.withdraw(session=session, customer_id=cid, source="widget", clock=still)
    assert not consent.has_marketing_consent(session=session, customer_id=cid)
    assert cid not in consent.consenting_customer_ids(session=session, customer_ids={cid})


def test_answering_the_same_again_adds_nothing(session: Session) -> None:
    (cid,) = customers(session, 1)
    clock = ticking()
    consent.grant(session=session, customer_id=cid, source="widget", clock=clock)
    consent.grant(session=session, customer_id=cid, source="widget", clock=clock)
    assert len(consent.history(session=session, customer_id=cid)) == 1
    # A new text version is a new answer.
    consent.grant(session=session, customer_id=cid, source="widget", version="2027-01", clock=clock)
    assert [r.version for r in consent.history(session=session, customer_id=cid)] == [
        "2026-12",
        "2027-01",
    ]


def test_renewal_is_needed_after_the_text_changes(session: Session) -> None:
    (cid,) = customers(session, 1)
    consent.grant(session=session, customer_id=cid, source="widget", version="2026-01")
    assert consent.needs_renewal(session=session, customer_id=cid, version="2026-12")
    assert not consent.needs_renewal(session=session, customer_id=cid, version="2026-01")


def test_every_change_is_audited_without_personal_data(session: Session) -> None:
    cid, other, _ = customers(session)
    staff_id = a_staff_id(session)
    clock = ticking()
    consent.grant(session=session, customer_id=cid, source="widget", clock=clock)
    consent.withdraw(
        session=session, customer_id=cid, source="agent", staff_id=staff_id, clock=clock
    )
    consent.grant(session=session, customer_id=other, source="import", clock=clock)
    events = audit.events_for(session=session, customer_id=cid)
    assert [(e.actor, e.staff_id, e.action, e.detail["granted"]) for e in events] == [
        ("staff", staff_id, "consent_change", False),
        ("customer", None, "consent_change", True),
    ]
    (imported,) = audit.events_for(session=session, customer_id=other)
    assert imported.actor == "system"
    customer = session.get(Customer, cid)
    assert customer is not None
    for event in events:
        text = repr(event.to_dict())
        assert customer.name not in text
        assert customer.phone is None or customer.phone not in text


def test_audit_refuses_personal_data_and_unknown_codes(session: Session) -> None:
    (cid,) = customers(session, 1)
    with pytest.raises(InvalidInput):
        audit.record(
            session=session,
            actor="system",
            action="export",
            customer_id=cid,
            detail={"note": "call 13812345678"},
        )
    with pytest.raises(InvalidInput):
        audit.record(session=session, actor="robot", action="export", customer_id=cid)
    with pytest.raises(InvalidInput):
        audit.record(session=session, actor="staff", action="export", customer_id=cid)
    with pytest.raises(InvalidInput):
        audit.record(session=session, actor="system", action="peek", customer_id=cid)
    assert session.scalars(select(AuditEvent).where(AuditEvent.customer_id == cid)).all() == []


def test_bad_sources_and_missing_agents_are_refused(session: Session) -> None:
    (cid,) = customers(session, 1)
    with pytest.raises(InvalidInput):
        consent.grant(session=session, customer_id=cid, source="email")
    with pytest.raises(InvalidInput):
        consent.grant(session=session, customer_id=cid, source="agent")
    assert session.scalars(select(Consent).where(Consent.customer_id == cid)).all() == []


def test_customer_look_up_by_external_id(session: Session) -> None:
    cid = consent.customer_id_for(session=session, external_id="C00001")
    assert session.get(Customer, cid) is not None
    with pytest.raises(CustomerNotFound):
        consent.customer_id_for(session=session, external_id="NOPE")


def test_segments_use_the_consent_table(session: Session) -> None:
    """bot.services.segments finds this module's clause through its hook."""
    segments = pytest.importorskip("bot.services.segments")
    cid, other, _ = customers(session)
    consent.grant(session=session, customer_id=cid, source="widget")
    clause = segments.marketing_consent_clause()
    query = select(Customer.id).where(Customer.id.in_([cid, other]), clause)
    assert set(session.scalars(query)) == {cid}
    consent.withdraw(session=session, customer_id=cid, source="widget")
    assert set(session.scalars(query)) == set()


def test_the_export_holds_everything_and_is_json(session: Session) -> None:
    cid = consent.customer_id_for(session=session, external_id="C00001")
    consent.grant(session=session, customer_id=cid, source="widget")
    document = export_customer(session=session, customer_id=cid, clock=lambda: START)
    assert json.loads(json.dumps(document)) == document
    assert document["generated_at"] == START.isoformat()
    assert document["profile"]["external_id"] == "C00001"
    orders = session.scalars(select(Order).where(Order.customer_id == cid)).all()
    assert len(document["orders"]) == len(orders) > 0
    shipped = [o for o in document["orders"] if o["shipment"] and o["shipment"]["events"]]
    assert shipped and all(o["items"] for o in document["orders"])
    assert [r["granted"] for r in document["records"]["consent"]] == [True]
    assert document["records"]["audit_event"][0]["action"] == "consent_change"
    assert document["not_included"] == ["rasa_tracker_events"]
    with pytest.raises(KeyError):
        export_customer(session=session, customer_id=-1)
