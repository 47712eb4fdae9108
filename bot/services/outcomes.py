"""Outcome rows: what a journey did for a customer, written in the same transaction as the
change itself and unique per (Rasa message id, kind), so a retried turn acts once.

A service first asks ``replay(...)``: if this message already did this kind of thing, it
returns what was recorded and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.models import Outcome


@dataclass(frozen=True)
class Turn:
    """Who asked, in which conversation, by which message: the idempotency key."""

    message_id: str
    customer_id: int | None = None
    conversation_id: str | None = None


@dataclass(frozen=True)
class OutcomeView:
    kind: str
    detail: dict[str, Any]
    created_at: datetime
    order_id: int | None = None


def replay(*, session: Session, turn: Turn, kind: str) -> dict[str, Any] | None:
    """The detail recorded for ``kind`` by this message, if it already ran."""
    row = session.scalars(
        select(Outcome).where(Outcome.message_id == turn.message_id, Outcome.kind == kind)
    ).first()
    return dict(row.detail) if row is not None else None


def record(
    *,
    session: Session,
    turn: Turn,
    kind: str,
    order_id: int | None = None,
    detail: dict[str, Any] | None = None,
    clock: Clock = utcnow,
) -> None:
    """Add the outcome row to the caller's unit of work (the caller commits)."""
    session.add(
        Outcome(
            kind=kind,
            message_id=turn.message_id,
            conversation_id=turn.conversation_id,
            customer_id=turn.customer_id,
            order_id=order_id,
            detail=detail or {},
            created_at=clock(),
        )
    )
    session.flush()


def outcomes_for_customer(
    *, session: Session, customer_id: int, limit: int = 50
) -> list[OutcomeView]:
    """The customer's outcomes, newest first (for the profile)."""
    rows = session.scalars(
        select(Outcome)
        .where(Outcome.customer_id == customer_id)
        .order_by(Outcome.created_at.desc(), Outcome.id.desc())
        .limit(limit)
    )
    return [OutcomeView(r.kind, dict(r.detail), r.created_at, r.order_id) for r in rows]


def record_complaint(
    *,
    session: Session,
    turn: Turn,
    text: str,
    order_id: int | None = None,
    clock: Clock = utcnow,
) -> bool:
    """Record a complaint once per message; False when this message already did."""
    if replay(session=session, turn=turn, kind="complaint_recorded") is not None:
        return False
    record(
        session=session,
        turn=turn,
        kind="complaint_recorded",
        order_id=order_id,
        detail={"text": text[:500]},
        clock=clock,
    )
    return True
