"""What the assistant may know about a shopper to serve them personally."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.models import Customer


@dataclass(frozen=True)
class CustomerBrief:
    id: int
    name: str
    language: str
    membership_level: str


def customer_brief(*, session: Session, customer_id: int) -> CustomerBrief | None:
    """The customer's name, language and membership level, or None if unknown."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        return None
    return CustomerBrief(customer.id, customer.name, customer.language, customer.membership_level)
