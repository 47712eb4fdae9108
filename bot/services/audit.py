"""The audit log of privacy-relevant actions: who (a staff member, the customer, the system)
did what (consent_change, export, erasure, …) to whose data, and when.

It never holds the personal data itself: ``detail`` takes short codes and numbers only, and
``record`` refuses a value that looks like personal data (``bot.privacy.masking``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput
from bot.models.privacy import AUDIT_ACTORS, AuditEvent
from bot.privacy.masking import find

MAX_DETAIL_VALUE = 64
ACTIONS = ("consent_change", "export", "erasure", "retention")


@dataclass(frozen=True)
class AuditView:
    id: int
    actor: str
    staff_id: int | None
    action: str
    customer_id: int | None
    detail: dict[str, Any]
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actor": self.actor,
            "staff_id": self.staff_id,
            "action": self.action,
            "customer_id": self.customer_id,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }


def _check_detail(detail: dict[str, Any]) -> dict[str, Any]:
    for key, value in detail.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"audit detail {key!r} must be a code or a number")
        if isinstance(value, str) and (len(value) > MAX_DETAIL_VALUE or find(value)):
            raise InvalidInput(f"audit detail {key!r} must not carry personal data")
    return dict(detail)


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    customer_id: int | None,
    staff_id: int | None = None,
    detail: dict[str, Any] | None = None,
    clock: Clock = utcnow,
) -> None:
    """Add an audit event to the caller's unit of work (the caller commits, so the event and
    the change it records stand or fall together). ``actor`` is staff (give ``staff_id``),
    customer or system."""
    if actor not in AUDIT_ACTORS:
        raise InvalidInput(f"unknown audit actor {actor!r}")
    if (actor == "staff") != (staff_id is not None):
        raise InvalidInput("a staff actor needs its staff id, and only a staff actor has one")
    if action not in ACTIONS:
        raise InvalidInput(f"unknown audit action {action!r}")
    session.add(
        AuditEvent(
            actor=actor,
            staff_id=staff_id,
            action=action,
            customer_id=customer_id,
            detail=_check_detail(detail or {}),
            at=clock(),
        )
    )


def events_for(*, session: Session, customer_id: int, limit: int = 200) -> list[AuditView]:
    """The newest audit events about one customer."""
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.customer_id == customer_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    return [
        AuditView(r.id, r.actor, r.staff_id, r.action, r.customer_id, dict(r.detail), r.at)
        for r in rows
    ]
