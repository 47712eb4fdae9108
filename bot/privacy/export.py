"""Everything Kefu's database holds about one customer, as one JSON-ready document (the
right of access / portability, PIPL art. 45, GDPR art. 15 and 20).

Sections: ``profile`` (the customer row), ``orders`` (with items, shipments and tracking
events), ``conversations`` (with every message and the rows hanging off each conversation:
handoffs, tickets, satisfaction answers …), and ``records`` — every other table that has a
``customer_id`` column (outcomes, consent history, coupons, returns, CRM tags and scores,
visitors, the audit trail …), found from the metadata so a new table is exported without
changing this module.

Rasa's tracker events (every event of every session: what the shopper typed, what the NLU
made of it, slots, actions) live in the engine's own database; given a ``Trackers`` reader
(``bot.privacy.erasure.EngineTrackers``) each conversation carries them under
``tracker_events``. Without one the document says so under ``not_included``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidToken
from bot.models import Base, Conversation, Customer, Order, OrderItem, Shipment
from bot.models.store import ShipmentEvent, Variant
from bot.privacy.erasure import Trackers

FORMAT_VERSION = 2
NOT_INCLUDED: list[str] = []
# Tables given their own section, or that are the store's (not the customer's) data.
_STRUCTURED = {"customer", "order", "conversation", "message"}
_SECRET_COLUMNS = {"password_hash", "token_hash"}


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _row(table: Table, row: Any) -> dict[str, Any]:
    mapping = row._mapping
    return {c.name: _value(mapping[c]) for c in table.columns if c.name not in _SECRET_COLUMNS}


def _one(session: Session, table: Table, key: Any) -> dict[str, Any]:
    return _row(table, session.execute(select(table).where(table.c.id == key)).one())


def _table_rows(
    session: Session, table: Table, column: str, keys: list[Any]
) -> list[dict[str, Any]]:
    if not keys:
        return []
    order = [table.c[name] for name in ("id",) if name in table.c]
    query = select(table).where(table.c[column].in_(keys)).order_by(*order)
    return [_row(table, r) for r in session.execute(query)]


def export_customer(
    *,
    session: Session,
    customer_id: int,
    trackers: Trackers | None = None,
    clock: Clock = utcnow,
) -> dict[str, Any]:
    """The export document for ``customer_id`` (``KeyError`` if there is no such customer).
    ``trackers`` adds Rasa's events per conversation (``TrackerStoreUnavailable`` if the
    engine cannot be read: an export is whole or refused)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise KeyError(customer_id)
    tables = Base.metadata.tables
    profile = _one(session, tables["customer"], customer_id)

    orders: list[dict[str, Any]] = []
    for order in session.scalars(
        select(Order).where(Order.customer_id == customer_id).order_by(Order.placed_at, Order.id)
    ):
        items = session.execute(
            select(OrderItem, Variant.sku)
            .join(Variant, Variant.id == OrderItem.variant_id)
            .where(OrderItem.order_id == order.id)
            .order_by(OrderItem.id)
        ).all()
        shipment = session.scalars(select(Shipment).where(Shipment.order_id == order.id)).first()
        entry = _one(session, tables["order"], order.id)
        entry["items"] = [
            {"sku": sku, "quantity": item.quantity, "unit_price_fen": item.unit_price_fen}
            for item, sku in items
        ]
        if shipment is not None:
            events = session.scalars(
                select(ShipmentEvent)
                .where(ShipmentEvent.shipment_id == shipment.id)
                .order_by(ShipmentEvent.occurred_at, ShipmentEvent.id)
            )
            entry["shipment"] = {
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "status": shipment.status,
                "promised_at": _value(shipment.promised_at),
                "estimated_at": _value(shipment.estimated_at),
                "shipped_at": _value(shipment.shipped_at),
                "delivered_at": _value(shipment.delivered_at),
                "delay_reason": shipment.delay_reason,
                "events": [
                    {
                        "at": _value(e.occurred_at),
                        "status": e.status,
                        "location_zh": e.location_zh,
                        "location_en": e.location_en,
                    }
                    for e in events
                ],
            }
        else:
            entry["shipment"] = None
        orders.append(entry)

    conversation_ids = list(
        session.scalars(
            select(Conversation.id)
            .where(Conversation.customer_id == customer_id)
            .order_by(Conversation.created_at, Conversation.id)
        )
    )
    by_conversation = [
        t
        for name, t in tables.items()
        if "conversation_id" in t.c and name not in _STRUCTURED and "customer_id" not in t.c
    ]
    tracker_events = trackers.export(conversation_ids) if trackers is not None else {}
    conversations: list[dict[str, Any]] = []
    for cid in conversation_ids:
        entry = _one(session, tables["conversation"], cid)
        entry["messages"] = _table_rows(session, tables["message"], "conversation_id", [cid])
        entry["records"] = {
            t.name: rows
            for t in by_conversation
            if (rows := _table_rows(session, t, "conversation_id", [cid]))
        }
        if trackers is not None:
            entry["tracker_events"] = tracker_events.get(cid, [])
        conversations.append(entry)

    records: dict[str, list[dict[str, Any]]] = {}
    for name, table in sorted(tables.items()):
        if name in _STRUCTURED or "customer_id" not in table.c:
            continue
        rows = _table_rows(session, table, "customer_id", [customer_id])
        if rows:
            records[name] = rows

    return {
        "format": "kefu.customer_export",
        "format_version": FORMAT_VERSION,
        "generated_at": clock().isoformat(),
        "customer": {"external_id": customer.external_id},
        "profile": profile,
        "orders": orders,
        "conversations": conversations,
        "records": records,
        "not_included": NOT_INCLUDED if trackers is not None else ["rasa_tracker_events"],
    }


# --- the shopper's own download link -------------------------------------------------------

_LINK_PREFIX = "x1"
_LINK_CONTEXT = "kefu.export-link."


def _link_mac(key: str, body: str) -> str:
    digest = hmac.new(key.encode(), (_LINK_CONTEXT + body).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_export_link(
    customer_id: int, *, key: str, ttl: timedelta, clock: Clock = utcnow
) -> tuple[str, datetime]:
    """A token naming one customer's export until ``clock() + ttl`` (HMAC-SHA256 with the
    gateway's secret, under its own context, so no other token of ours passes for one)."""
    expires = int((clock() + ttl).timestamp())
    body = f"{_LINK_PREFIX}.{customer_id}.{expires}"
    return f"{body}.{_link_mac(key, body)}", datetime.fromtimestamp(expires, timezone.utc)


def verify_export_link(token: str, *, key: str, clock: Clock = utcnow) -> int:
    """The customer id of a valid, unexpired export link; ``InvalidToken`` otherwise."""
    parts = token.split(".") if isinstance(token, str) and len(token) <= 200 else []
    if len(parts) != 4 or parts[0] != _LINK_PREFIX or not parts[1].isdigit():
        raise InvalidToken("malformed download link")
    if not parts[2].isdigit():
        raise InvalidToken("malformed download link")
    if not hmac.compare_digest(parts[3], _link_mac(key, ".".join(parts[:3]))):
        raise InvalidToken("this download link is not valid")
    if int(parts[2]) < clock().timestamp():
        raise InvalidToken("this download link has expired: ask for a new one in the chat")
    return int(parts[1])
