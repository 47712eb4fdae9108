"""A shopper's membership: level, points balance and what they are worth."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.models import Customer
from bot.services.policies import member_benefits


@dataclass(frozen=True)
class MembershipView:
    level: str
    points: int
    discount_percent: int
    points_per_yuan_spent: int


def membership(*, session: Session, customer_id: int) -> MembershipView | None:
    customer = session.get(Customer, customer_id)
    if customer is None:
        return None
    discount, rate = member_benefits(customer.membership_level)
    return MembershipView(customer.membership_level, customer.points, discount, rate)
