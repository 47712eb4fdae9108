"""What the assistant may know about a shopper to serve them personally."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
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


@dataclass(frozen=True)
class CustomerListing:
    external_id: str
    name: str
    membership_level: str


def list_customers(*, session: Session, limit: int = 40) -> list[CustomerListing]:
    """The first customers by the store's id (the demo store's log-in switch lists them)."""
    rows = session.scalars(select(Customer).order_by(Customer.external_id).limit(limit))
    return [CustomerListing(c.external_id, c.name, c.membership_level) for c in rows]


def customer_by_external_id(*, session: Session, external_id: str) -> CustomerListing | None:
    customer = session.scalars(select(Customer).where(Customer.external_id == external_id)).first()
    return (
        CustomerListing(customer.external_id, customer.name, customer.membership_level)
        if customer
        else None
    )
