"""Returns and exchanges: the 7-day no-reason rule, the store's exclusions, the requests.

Eligibility runs from the delivery date: within ``return_window_days`` (default 7) of
delivery any line may go back without a reason, except the excluded categories (underwear
by default) and customised goods; a quality problem may go back within
``quality_return_window_days`` whatever the category. Refunds go back to the original payment
within ``refund_business_days`` working days of the parcel reaching the warehouse.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.clock import Clock, utcnow
from bot.errors import NotEligible, OrderNotFound
from bot.models import Order, OrderItem, ServiceRequest, Shipment, Variant
from bot.services.outcomes import Turn, record, replay
from bot.settings import Settings, get_settings

LETTER_SIZES = ("XS", "S", "M", "L", "XL", "XXL", "XXXL")
OPEN_REQUEST = ("requested", "approved", "received")
_UP = re.compile(r"大一码|大一号|大一点|大码|bigger|larger|size up|one size up", re.I)
_DOWN = re.compile(r"小一码|小一号|小一点|小码|smaller|size down|one size down", re.I)
_STATUS = re.compile(
    r"进度|状态|到哪|什么时候到|多久到|到账|退到哪|处理得怎么样|status|progress|when will|"
    r"how long|where is my refund|haven't received|not received",
    re.I,
)
_QUALITY = re.compile(
    r"质量|破|坏|脱线|开线|掉色|起球|瑕疵|污渍|发错|错发|defect|damaged|broken|faulty|torn|wrong item|stain",
    re.I,
)


@dataclass(frozen=True)
class LineView:
    item_id: int
    name_zh: str
    name_en: str
    size: str
    colour: str
    quantity: int
    unit_price_fen: int
    product_id: int


@dataclass(frozen=True)
class ReturnCheck:
    """May this order line go back (or be exchanged)? ``reason`` says why not."""

    order_number: str
    line: LineView
    eligible: bool
    reason: str | None
    delivered_at: datetime | None
    deadline: datetime | None
    refund_fen: int
    quality: bool = False


@dataclass(frozen=True)
class VariantOption:
    variant_id: int
    size: str
    colour: str
    stock: int


@dataclass(frozen=True)
class RequestView:
    number: str
    kind: str
    status: str
    reason: str
    order_number: str
    name_zh: str
    name_en: str
    size: str
    colour: str
    refund_fen: int | None
    created_at: datetime
    target_size: str | None = None
    target_colour: str | None = None
    replayed: bool = False


def size_shift(text: str | None) -> int:
    """+1 for "one size up", -1 for "one size down", else 0."""
    if text and _UP.search(text):
        return 1
    if text and _DOWN.search(text):
        return -1
    return 0


_SIZE_WORD = re.compile(r"(?<![A-Za-z0-9])(XXXL|XXL|XL|XS|S|M|L|2[89]|3[0-6])(?![A-Za-z0-9])", re.I)


def size_in_text(text: str | None) -> str | None:
    """A size named in a short answer ("size S", "要L的", "32码") when NLU found none."""
    match = _SIZE_WORD.search(text or "")
    return match.group(1).upper() if match else None


def asks_for_status(text: str | None) -> bool:
    """ "退款什么时候到账" / "where is my refund": about an existing request, not a new one."""
    return bool(text and _STATUS.search(text))


def is_quality_problem(text: str | None) -> bool:
    return bool(text and _QUALITY.search(text))


def _size_key(size: str) -> tuple[int, float | str]:
    if size.upper() in LETTER_SIZES:
        return (0, LETTER_SIZES.index(size.upper()))
    try:
        return (1, float(size))
    except ValueError:
        return (2, size)


def _load_order(session: Session, customer_id: int, order_number: str | None) -> Order:
    stmt = (
        select(Order)
        .where(Order.customer_id == customer_id)
        .options(
            selectinload(Order.items).selectinload(OrderItem.variant).selectinload(Variant.product),
            selectinload(Order.shipment),
        )
        .order_by(Order.placed_at.desc(), Order.id.desc())
    )
    if order_number:
        order = session.scalars(stmt.where(Order.order_number == order_number)).first()
    else:
        delivered = stmt.join(Shipment).where(
            Order.status == "delivered", Shipment.delivered_at.is_not(None)
        )
        order = (
            session.scalars(delivered.limit(1)).first() or session.scalars(stmt.limit(1)).first()
        )
    if order is None:
        raise OrderNotFound(order_number or "")
    return order


def _line(item: OrderItem) -> LineView:
    product = item.variant.product
    return LineView(
        item.id,
        product.name_zh,
        product.name_en,
        item.variant.size,
        item.variant.colour,
        item.quantity,
        item.unit_price_fen,
        product.id,
    )


def _open_request(session: Session, item_id: int) -> ServiceRequest | None:
    return session.scalars(
        select(ServiceRequest).where(
            ServiceRequest.order_item_id == item_id, ServiceRequest.status.in_(OPEN_REQUEST)
        )
    ).first()


def _why_not(
    session: Session,
    order: Order,
    item: OrderItem,
    *,
    quality: bool,
    settings: Settings,
    now: datetime,
) -> tuple[str | None, datetime | None]:
    delivered = order.shipment.delivered_at if order.shipment else None
    if order.status in ("cancelled", "refunded", "pending_payment"):
        return "order_closed", None
    if order.status != "delivered" or delivered is None:
        return "not_delivered", None
    days = settings.quality_return_window_days if quality else settings.return_window_days
    deadline = delivered + timedelta(days=days)
    if _open_request(session, item.id) is not None:
        return "already_requested", deadline
    if now > deadline:
        return "window_passed", deadline
    product = item.variant.product
    if not quality and product.customised:
        return "customised", deadline
    if not quality and product.category in settings.no_reason_return_excluded_categories:
        return "excluded_category", deadline
    return None, deadline


def check_return(
    *,
    session: Session,
    customer_id: int,
    order_number: str | None = None,
    product: str | None = None,
    quality: bool = False,
    settings: Settings | None = None,
    clock: Clock = utcnow,
) -> ReturnCheck:
    """Eligibility of one line of the order (named, else the latest delivered one): the line
    of the product named, else the first line that may go back, else the first line."""
    settings = settings or get_settings()
    order = _load_order(session, customer_id, order_number)
    now = clock()
    items = sorted(order.items, key=lambda i: i.id)
    if product:
        wanted = product.strip().lower()
        named = [
            i
            for i in items
            if wanted in i.variant.product.name_zh.lower()
            or wanted in i.variant.product.name_en.lower()
        ]
        items = named or items
    checked = [
        (item, *_why_not(session, order, item, quality=quality, settings=settings, now=now))
        for item in items
    ]
    item, reason, deadline = next((c for c in checked if c[1] is None), checked[0])
    return ReturnCheck(
        order_number=order.order_number,
        line=_line(item),
        eligible=reason is None,
        reason=reason,
        delivered_at=order.shipment.delivered_at if order.shipment else None,
        deadline=deadline,
        refund_fen=item.unit_price_fen * item.quantity,
        quality=quality,
    )


def exchange_option(
    *,
    session: Session,
    item_id: int,
    size: str | None = None,
    colour: str | None = None,
    shift: int = 0,
) -> VariantOption | None:
    """The variant an order line would be exchanged for — same product, the size and/or
    colour asked for (or one size up/down) — or None when no such variant exists."""
    item = session.get(OrderItem, item_id)
    if item is None:
        return None
    current = item.variant
    variants = session.scalars(
        select(Variant).where(Variant.product_id == current.product_id)
    ).all()
    target_colour = (colour or current.colour).lower()
    target_size = size.upper() if size else None
    if target_size is None and shift:
        sizes = sorted({v.size for v in variants}, key=_size_key)
        index = sizes.index(current.size) + shift if current.size in sizes else -1
        if 0 <= index < len(sizes):
            target_size = sizes[index]
        else:
            return None
    target_size = target_size or current.size
    for v in variants:
        if (
            v.size.upper() == target_size
            and v.colour.lower() == target_colour
            and v.id != current.id
        ):
            return VariantOption(v.id, v.size, v.colour, v.stock)
    return None


def exchange_choices(*, session: Session, item_id: int) -> list[VariantOption]:
    """The in-stock variants of the line's product other than the one bought."""
    item = session.get(OrderItem, item_id)
    if item is None:
        return []
    variants = session.scalars(
        select(Variant).where(
            Variant.product_id == item.variant.product_id,
            Variant.id != item.variant_id,
            Variant.stock > 0,
        )
    ).all()
    return [
        VariantOption(v.id, v.size, v.colour, v.stock)
        for v in sorted(variants, key=lambda v: (v.colour, _size_key(v.size)))
    ]


def _number(prefix: str, message_id: str) -> str:
    return prefix + hashlib.sha256(message_id.encode()).hexdigest()[:12].upper()


def _describe(session: Session, r: ServiceRequest, *, replayed: bool = False) -> RequestView:
    item = session.get(OrderItem, r.order_item_id)
    order = session.get(Order, r.order_id)
    assert item is not None and order is not None
    target = session.get(Variant, r.exchange_variant_id) if r.exchange_variant_id else None
    product = item.variant.product
    return RequestView(
        number=r.number,
        kind=r.kind,
        status=r.status,
        reason=r.reason,
        order_number=order.order_number,
        name_zh=product.name_zh,
        name_en=product.name_en,
        size=item.variant.size,
        colour=item.variant.colour,
        refund_fen=r.refund_fen,
        created_at=r.created_at,
        target_size=target.size if target else None,
        target_colour=target.colour if target else None,
        replayed=replayed,
    )


def create_request(
    *,
    session: Session,
    turn: Turn,
    kind: str,
    order_number: str,
    item_id: int,
    quality: bool = False,
    exchange_variant_id: int | None = None,
    settings: Settings | None = None,
    clock: Clock = utcnow,
) -> RequestView:
    """Open a return (``kind="return"``) or exchange request for one order line, once per
    message. Raises ``NotEligible`` when the policy does not allow it (checked again here:
    the shopper may have waited between question and answer)."""
    if kind not in ("return", "exchange"):
        raise ValueError(kind)
    if turn.customer_id is None:
        raise OrderNotFound(order_number)
    settings = settings or get_settings()
    outcome_kind = f"{kind}_requested"
    done = replay(session=session, turn=turn, kind=outcome_kind)
    if done is not None:
        existing = session.scalars(
            select(ServiceRequest).where(ServiceRequest.number == done["number"])
        ).one()
        return _describe(session, existing, replayed=True)
    order = _load_order(session, turn.customer_id, order_number)
    item = next((i for i in order.items if i.id == item_id), None)
    if item is None:
        raise OrderNotFound(order_number)
    now = clock()
    reason, _ = _why_not(session, order, item, quality=quality, settings=settings, now=now)
    if reason is not None:
        raise NotEligible(reason)
    if kind == "exchange":
        target = session.get(Variant, exchange_variant_id) if exchange_variant_id else None
        if target is None or target.product_id != item.variant.product_id:
            raise NotEligible("no_such_variant")
        if target.stock < item.quantity:
            raise NotEligible("out_of_stock")
        target.stock -= item.quantity  # held for the exchange
    request = ServiceRequest(
        number=_number("R" if kind == "return" else "X", turn.message_id),
        kind=kind,
        status="requested",
        reason="quality" if quality else "no_reason",
        customer_id=turn.customer_id,
        order_id=order.id,
        order_item_id=item.id,
        exchange_variant_id=exchange_variant_id if kind == "exchange" else None,
        refund_fen=item.unit_price_fen * item.quantity if kind == "return" else None,
        message_id=turn.message_id,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    session.flush()
    record(
        session=session,
        turn=turn,
        kind=outcome_kind,
        order_id=order.id,
        detail={"number": request.number, "order_number": order.order_number},
        clock=clock,
    )
    return _describe(session, request)


def latest_request(*, session: Session, customer_id: int) -> RequestView | None:
    """The customer's most recent return or exchange request, if any."""
    row = session.scalars(
        select(ServiceRequest)
        .where(ServiceRequest.customer_id == customer_id)
        .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())
        .limit(1)
    ).first()
    return _describe(session, row) if row is not None else None
