"""Marketing consent: given and withdrawn from the widget, by agents, or imported from the
store; every decision kept, the latest one (by time, then id) in force.

Withdrawal takes effect at once: ``has_marketing_consent`` and the SQL helpers the segments
and recommendations use (``marketing_consent_clause``, ``consenting_customer_ids``) read the
latest row, so there is nothing to refresh. A customer with no row has not consented. Every
change is audit-logged (``consent_change``) in the same unit of work.

The consent text's version is ``KEFU_CONSENT_VERSION``; each row records the version the
customer answered, so a store can ask again after changing its text (``needs_renewal``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, NotFound
from bot.models.privacy import CONSENT_PURPOSES, CONSENT_SOURCES, Consent
from bot.models.store import Customer
from bot.services import audit
from bot.settings import get_settings

MARKETING = "marketing"


class CustomerNotFound(NotFound):
    code = "customer_not_found"


@dataclass(frozen=True)
class ConsentView:
    purpose: str
    granted: bool
    version: str
    source: str
    recorded_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "granted": self.granted,
            "version": self.version,
            "source": self.source,
            "recorded_at": self.recorded_at.isoformat(),
        }


def _view(row: Consent) -> ConsentView:
    return ConsentView(row.purpose, row.granted, row.version, row.source, row.recorded_at)


def customer_id_for(*, session: Session, external_id: str) -> int:
    """The internal id of the store's customer ``external_id`` (``CustomerNotFound``)."""
    found = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
    if found is None:
        raise CustomerNotFound("no such customer")
    return found


def current(*, session: Session, customer_id: int, purpose: str = MARKETING) -> ConsentView | None:
    """The decision in force, or None if the customer never answered."""
    row = session.scalars(
        select(Consent)
        .where(Consent.customer_id == customer_id, Consent.purpose == purpose)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        .limit(1)
    ).first()
    return _view(row) if row is not None else None


def history(*, session: Session, customer_id: int, purpose: str = MARKETING) -> list[ConsentView]:
    """Every decision, oldest first."""
    rows = session.scalars(
        select(Consent)
        .where(Consent.customer_id == customer_id, Consent.purpose == purpose)
        .order_by(Consent.recorded_at, Consent.id)
    )
    return [_view(r) for r in rows]


def has_marketing_consent(*, session: Session, customer_id: int) -> bool:
    """Whether the customer's latest marketing decision is a yes."""
    latest = current(session=session, customer_id=customer_id)
    return latest is not None and latest.granted


def needs_renewal(*, session: Session, customer_id: int, version: str | None = None) -> bool:
    """A yes given to an older consent text than the current one (ask again)."""
    latest = current(session=session, customer_id=customer_id)
    wanted = version or get_settings().consent_version
    return latest is not None and latest.granted and latest.version != wanted


def set_consent(
    *,
    session: Session,
    customer_id: int,
    granted: bool,
    source: str,
    staff_id: int | None = None,
    version: str | None = None,
    purpose: str = MARKETING,
    clock: Clock = utcnow,
) -> ConsentView:
    """Record a decision (and its audit event) in the caller's unit of work.

    Answering what is already in force with the same version adds nothing. ``source`` is
    widget (the customer), agent (give ``staff_id``) or import (the system)."""
    if purpose not in CONSENT_PURPOSES:
        raise InvalidInput(f"unknown consent purpose {purpose!r}")
    if source not in CONSENT_SOURCES:
        raise InvalidInput(f"unknown consent source {source!r}")
    if (source == "agent") != (staff_id is not None):
        raise InvalidInput("an agent's consent change needs the agent, and only that one")
    version = version or get_settings().consent_version
    latest = current(session=session, customer_id=customer_id, purpose=purpose)
    if latest is not None and latest.granted == granted and latest.version == version:
        return latest
    row = Consent(
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        version=version,
        source=source,
        recorded_at=clock(),
    )
    session.add(row)
    actor = {"widget": "customer", "agent": "staff", "import": "system"}[source]
    audit.record(
        session=session,
        actor=actor,
        staff_id=staff_id,
        action="consent_change",
        customer_id=customer_id,
        detail={"purpose": purpose, "granted": granted, "version": version, "source": source},
        clock=clock,
    )
    session.flush()
    return _view(row)


def marketing_state(*, session: Session, customer_id: int, version: str) -> dict[str, Any]:
    """What the widget and the APIs show: the decision in force, and whether the text it
    was given to is older than ``version`` (then the shopper is asked again)."""
    latest = current(session=session, customer_id=customer_id)
    return {
        "marketing": bool(latest and latest.granted),
        "consent": latest.to_dict() if latest else None,
        "current_version": version,
        "needs_renewal": needs_renewal(session=session, customer_id=customer_id, version=version),
    }


def grant(
    *,
    session: Session,
    customer_id: int,
    source: str,
    staff_id: int | None = None,
    version: str | None = None,
    clock: Clock = utcnow,
) -> ConsentView:
    """The customer says yes to marketing."""
    return set_consent(
        session=session,
        customer_id=customer_id,
        granted=True,
        source=source,
        staff_id=staff_id,
        version=version,
        clock=clock,
    )


def withdraw(
    *,
    session: Session,
    customer_id: int,
    source: str,
    staff_id: int | None = None,
    version: str | None = None,
    clock: Clock = utcnow,
) -> ConsentView:
    """The customer says no (or no longer): effective for every later query at once."""
    return set_consent(
        session=session,
        customer_id=customer_id,
        granted=False,
        source=source,
        staff_id=staff_id,
        version=version,
        clock=clock,
    )


# --- SQL for segments and recommendations --------------------------------------------------


def _latest_granted(customer_id: Any, purpose: str) -> ColumnElement[bool]:
    """A consent row for ``customer_id`` that says yes and that no later row overrides."""
    mine, later = aliased(Consent), aliased(Consent)
    newer = exists().where(
        later.customer_id == mine.customer_id,
        later.purpose == mine.purpose,
        or_(
            later.recorded_at > mine.recorded_at,
            and_(later.recorded_at == mine.recorded_at, later.id > mine.id),
        ),
    )
    return (
        exists()
        .where(
            mine.customer_id == customer_id,
            mine.purpose == purpose,
            mine.granted.is_(True),
            ~newer,
        )
        .correlate_except(mine, later)
    )


def marketing_consent_clause() -> ColumnElement[bool]:
    """SQL: "this ``customer`` row's latest marketing decision is a yes" (correlated to the
    customer table; ``bot.services.segments`` picks this up)."""
    return _latest_granted(Customer.id, MARKETING)


def consenting_customer_ids_query(purpose: str = MARKETING) -> Select[tuple[int]]:
    """SQL: the ids of customers whose latest decision for ``purpose`` is a yes."""
    mine, later = aliased(Consent), aliased(Consent)
    newer = exists().where(
        later.customer_id == mine.customer_id,
        later.purpose == mine.purpose,
        or_(
            later.recorded_at > mine.recorded_at,
            and_(later.recorded_at == mine.recorded_at, later.id > mine.id),
        ),
    )
    return (
        select(mine.customer_id)
        .where(mine.purpose == purpose, mine.granted.is_(True), ~newer)
        .distinct()
    )


def consenting_customer_ids(
    *, session: Session, customer_ids: set[int] | None = None, purpose: str = MARKETING
) -> set[int]:
    """The customers (of ``customer_ids``, if given) who consented and have not withdrawn."""
    query = consenting_customer_ids_query(purpose)
    if customer_ids is not None:
        if not customer_ids:
            return set()
        query = query.where(query.selected_columns[0].in_(sorted(customer_ids)))
    return set(session.scalars(query))
