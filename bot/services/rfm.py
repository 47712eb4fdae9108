"""RFM scoring: recency, frequency and monetary quintiles (1–5) per customer, in SQL.

Only purchases count (``PURCHASED_ORDER_STATUSES``): a customer without one has no score.
Quintiles are by rank, ``1 + 5 * (rank - 1) // buyers``, so customers with equal values get
equal scores (NTILE would split a tie — most customers have one order — across scores
arbitrarily). 5 is best: the most recent last order, the most orders, the most money.
The whole table is rebuilt in one transaction; ``computed_at`` says as of when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import Clock, utcnow
from bot.models import Order
from bot.models.base import UTCDateTime
from bot.models.crm import PURCHASED_ORDER_STATUSES, CustomerRfm


@dataclass(frozen=True)
class RfmScore:
    customer_id: int
    last_order_at: datetime
    frequency: int
    monetary_fen: int
    r: int
    f: int
    m: int
    computed_at: datetime


def recompute_rfm(*, session: Session, clock: Clock = utcnow) -> int:
    """Rebuild every customer's RFM scores in one INSERT … SELECT; returns how many."""
    now = clock()
    session.flush()
    per_customer = (
        select(
            Order.customer_id.label("customer_id"),
            func.max(Order.placed_at).label("last_order_at"),
            func.count().label("frequency"),
            func.sum(Order.total_fen).label("monetary_fen"),
        )
        .where(Order.status.in_(PURCHASED_ORDER_STATUSES))
        .group_by(Order.customer_id)
        .subquery("per_customer")
    )
    buyers = func.count().over()

    def quintile(column: ColumnElement[object]) -> ColumnElement[int]:
        rank = func.rank().over(order_by=column)
        return 1 + (5 * (rank - 1)) // buyers

    scored = select(
        per_customer.c.customer_id,
        per_customer.c.last_order_at,
        per_customer.c.frequency,
        per_customer.c.monetary_fen,
        quintile(per_customer.c.last_order_at),
        quintile(per_customer.c.frequency),
        quintile(per_customer.c.monetary_fen),
        literal(now, UTCDateTime),
    )
    session.execute(delete(CustomerRfm))
    session.execute(
        insert(CustomerRfm).from_select(
            [
                "customer_id",
                "last_order_at",
                "frequency",
                "monetary_fen",
                "r_score",
                "f_score",
                "m_score",
                "computed_at",
            ],
            scored,
        )
    )
    session.flush()
    return int(session.scalar(select(func.count()).select_from(CustomerRfm)) or 0)


def rfm_for_customer(*, session: Session, customer_id: int) -> RfmScore | None:
    """The customer's scores as last computed, or None (no purchases, or not computed yet)."""
    row = session.get(CustomerRfm, customer_id)
    if row is None:
        return None
    return RfmScore(
        row.customer_id,
        row.last_order_at,
        row.frequency,
        row.monetary_fen,
        row.r_score,
        row.f_score,
        row.m_score,
        row.computed_at,
    )
