from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from sqlalchemy import select

from bot.db import session_scope
from bot.models import Customer, Order


def make_tracker(
    *,
    intent: str = "order_status",
    text: str = "",
    slots: dict[str, Any] | None = None,
    customer_id: int | None = None,
    language: str = "zh",
    message_id: str = "m-1",
    active_loop: str | None = None,
    entities: list[dict[str, Any]] | None = None,
) -> Tracker:
    metadata = {"customer_id": customer_id} if customer_id is not None else {}
    latest = {
        "intent": {"name": intent, "confidence": 0.95},
        "entities": entities or [],
        "text": text,
        "message_id": message_id,
        "metadata": metadata,
    }
    all_slots = {
        "language": language,
        "order_number": None,
        "phone_last4": None,
        "verification_attempts": 0.0,
        "requested_slot": None,
        **(slots or {}),
    }
    return Tracker(
        sender_id="test-conversation",
        slots=all_slots,
        latest_message=latest,
        events=[{"event": "user", "text": text, "parse_data": latest, "metadata": metadata}],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


@pytest.fixture
def demo(app_db: str) -> dict[str, Any]:
    """Ids and numbers from the seeded app database."""
    with session_scope() as session:
        customers = {
            c.external_id: c.id
            for c in session.scalars(
                select(Customer).where(Customer.external_id.in_(["C00001", "C00002", "C00003"]))
            )
        }
        emily_order = session.scalars(
            select(Order)
            .where(Order.customer_id == customers["C00002"])
            .order_by(Order.placed_at.desc())
        ).first()
        other = session.scalars(
            select(Order).where(Order.customer_id == customers["C00003"])
        ).first()
        assert emily_order is not None and other is not None
        return {
            "customers": customers,
            "emily_order": emily_order.order_number,
            "emily_phone": emily_order.phone,
            "other_order": other.order_number,
        }
