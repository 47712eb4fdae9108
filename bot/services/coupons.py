"""Coupons and promotions: what a shopper can really get (Kefu never haggles), and the
delay script's compensation coupon under the store's policy (settings)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import OrderNotFound
from bot.models import Coupon, Customer, Order, Promotion
from bot.services.outcomes import Turn, record, replay
from bot.settings import Settings, get_settings

LEVEL_ORDER = ("regular", "silver", "gold", "vip")
_HAGGLE = re.compile(
    r"便宜点|便宜一点|少点|少一点|优惠点|再优惠|能不能便宜|打个折|抹个零|砍价|讲价|还价|包邮吧|"
    r"cheaper|lower the price|better price|give me a deal|knock .* off|haggle|bargain|discount for me",
    re.I,
)


def is_haggling(text: str | None) -> bool:
    """ "能便宜点吗" / "can you do it cheaper": the shopper is bargaining."""
    return bool(text and _HAGGLE.search(text))


@dataclass(frozen=True)
class CouponView:
    code: str
    amount_fen: int
    min_spend_fen: int
    expires_at: datetime
    source: str
    replayed: bool = False


@dataclass(frozen=True)
class PromotionView:
    code: str
    title_zh: str
    title_en: str
    min_spend_fen: int
    discount_fen: int
    ends_at: datetime


def _level_at_least(level: str, required: str | None) -> bool:
    if required is None:
        return True
    rank = {name: i for i, name in enumerate(LEVEL_ORDER)}
    return rank.get(level, 0) >= rank.get(required, 0)


def active_promotions(
    *, session: Session, customer_id: int | None = None, clock: Clock = utcnow
) -> list[PromotionView]:
    """Promotions running now that this shopper may use (member-only ones need the level)."""
    now = clock()
    level = "regular"
    if customer_id is not None:
        customer = session.get(Customer, customer_id)
        level = customer.membership_level if customer else "regular"
    rows = session.scalars(
        select(Promotion)
        .where(Promotion.starts_at <= now, Promotion.ends_at > now)
        .order_by(Promotion.min_spend_fen, Promotion.id)
    )
    return [
        PromotionView(p.code, p.title_zh, p.title_en, p.min_spend_fen, p.discount_fen, p.ends_at)
        for p in rows
        if _level_at_least(level, p.member_level)
    ]


def coupons_for_customer(
    *, session: Session, customer_id: int, clock: Clock = utcnow
) -> list[CouponView]:
    """The customer's unused, unexpired coupons, soonest to expire first."""
    rows = session.scalars(
        select(Coupon)
        .where(
            Coupon.customer_id == customer_id,
            Coupon.used_at.is_(None),
            Coupon.expires_at > clock(),
        )
        .order_by(Coupon.expires_at, Coupon.id)
    )
    return [CouponView(c.code, c.amount_fen, c.min_spend_fen, c.expires_at, c.source) for c in rows]


def _code(prefix: str, message_id: str) -> str:
    return prefix + hashlib.sha256(message_id.encode()).hexdigest()[:10].upper()


def issue_delay_coupon(
    *,
    session: Session,
    turn: Turn,
    order_number: str,
    settings: Settings | None = None,
    clock: Clock = utcnow,
) -> CouponView:
    """The delay script's compensation: one coupon per order, under the configured policy
    (``KEFU_DELAY_COUPON_FEN``, ``_MIN_SPEND_FEN``, ``_VALID_DAYS``)."""
    if turn.customer_id is None:
        raise OrderNotFound(order_number)
    settings = settings or get_settings()
    done = replay(session=session, turn=turn, kind="coupon_issued")
    if done is not None:
        return CouponView(
            done["code"],
            done["amount_fen"],
            done["min_spend_fen"],
            datetime.fromisoformat(done["expires_at"]),
            "delay_compensation",
            replayed=True,
        )
    order = session.scalars(
        select(Order).where(
            Order.customer_id == turn.customer_id, Order.order_number == order_number
        )
    ).first()
    if order is None:
        raise OrderNotFound(order_number)
    existing = session.scalars(
        select(Coupon).where(Coupon.order_id == order.id, Coupon.source == "delay_compensation")
    ).first()
    if existing is not None:
        # One compensation per order, however often it is asked for.
        return CouponView(
            existing.code,
            existing.amount_fen,
            existing.min_spend_fen,
            existing.expires_at,
            existing.source,
            replayed=True,
        )
    now = clock()
    coupon = Coupon(
        code=_code("DL", turn.message_id),
        customer_id=turn.customer_id,
        source="delay_compensation",
        amount_fen=settings.delay_coupon_fen,
        min_spend_fen=settings.delay_coupon_min_spend_fen,
        order_id=order.id,
        expires_at=now + timedelta(days=settings.delay_coupon_valid_days),
        created_at=now,
    )
    session.add(coupon)
    record(
        session=session,
        turn=turn,
        kind="coupon_issued",
        order_id=order.id,
        detail={
            "order_number": order.order_number,
            "code": coupon.code,
            "amount_fen": coupon.amount_fen,
            "min_spend_fen": coupon.min_spend_fen,
            "expires_at": coupon.expires_at.isoformat(),
        },
        clock=clock,
    )
    return CouponView(
        coupon.code, coupon.amount_fen, coupon.min_spend_fen, coupon.expires_at, coupon.source
    )
