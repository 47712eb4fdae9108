"""Store data in: batch upserts of the store's catalogue, customers, orders and shipments.

Every record is keyed by the store's own id (a product's ``external_id``, a variant's ``sku``,
a customer's ``external_id``, an order's ``order_number``; a shipment by its order's number),
so a batch is safe to send again: replaying it changes nothing and reports every record as
``unchanged``. A record is the whole current state of that thing in the store's system;
optional fields left out are stored empty. Kefu's own columns (an order's note, a delay
the shopper accepted, a cancellation requested in chat) are never touched.

A batch is all or nothing: every record is validated (the pydantic models below) and every
reference resolved (an order's customer and skus, a shipment's order) before anything is
written; any problem raises ``IngestError`` listing each one with the record's index, and the
writes themselves run in one SAVEPOINT. The caller owns the transaction and commits.

The API (api/routes/ingest.py) and the demo seed (bot/seed.py) both come through here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from bot.errors import BatchTooLarge, IngestError
from bot.labels import Kind, codes
from bot.models import (
    Customer,
    Order,
    OrderItem,
    Product,
    ServiceRequest,
    Shipment,
    ShipmentEvent,
    Variant,
)

MAX_BATCH = 1000  # records per batch (a product counts once, with all its variants)
MAX_PROBLEMS = 200  # listed in one error; the count says how many there were in all
MAX_INT = 2_000_000_000  # integer columns are 32-bit on PostgreSQL
_IN_CHUNK = 500  # values per SQL IN (...) list

# --- the records -------------------------------------------------------------------------


def _known(kind: Kind) -> Callable[[str], str]:
    return _one_of(codes(kind))


def _one_of(allowed: Sequence[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"unknown code {value!r}; one of: {', '.join(allowed)}")
        return value

    return check


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


StoreId = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[!-~]+$"),
    Field(description="the store's own id: printable ASCII, no spaces"),
]
OrderNumber = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[!-~]+$"),
    Field(description="the store's order number, as shoppers see it"),
]
Slug = Annotated[StrictStr, StringConstraints(max_length=32, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Phone = Annotated[
    StrictStr,
    StringConstraints(pattern=r"^\+?[0-9][0-9 -]{3,30}$"),
    Field(description="digits, optionally a leading + and spaces or dashes"),
]
Email = Annotated[StrictStr, StringConstraints(max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")]
Fen = Annotated[StrictInt, Field(ge=0, le=MAX_INT, description="money in fen (1/100 yuan)")]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]
UTCTime = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    Field(description="ISO 8601 with a time zone, e.g. 2026-11-18T14:05:00+08:00"),
]


Text16 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=16)]
Text100 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)]
Text200 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200)]
Text300 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=300)]
Text1000 = Annotated[StrictStr, StringConstraints(min_length=1, max_length=1000)]
TrackingNumber = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=64, pattern=r"^[!-~]+$")
]


def _enum(kind: Kind) -> Any:
    return Field(json_schema_extra={"enum": list(codes(kind))})


# Codes Kefu has words for in both languages (bot/labels.py): the journeys depend on them.
OrderStatus = Annotated[StrictStr, AfterValidator(_known("order_status")), _enum("order_status")]
ShipmentStatus = Annotated[
    StrictStr, AfterValidator(_known("shipment_status")), _enum("shipment_status")
]
Carrier = Annotated[StrictStr, AfterValidator(_known("carrier")), _enum("carrier")]
DelayReason = Annotated[StrictStr, AfterValidator(_known("delay_reason")), _enum("delay_reason")]
Language = Annotated[
    StrictStr,
    AfterValidator(_one_of(("zh", "en"))),
    Field(json_schema_extra={"enum": ["zh", "en"]}, description="the language Kefu answers in"),
]
MembershipLevel = Annotated[
    StrictStr, AfterValidator(_known("membership_level")), _enum("membership_level")
]


class _Record(BaseModel):
    # Unknown fields are refused, so a misspelt field name is an error, not silently lost.
    model_config = ConfigDict(extra="forbid")


class VariantIn(_Record):
    sku: StoreId
    size: Text16
    colour: Slug = Field(description="a colour code, e.g. navy or light-blue")
    price_fen: Fen
    stock: Count


class ProductIn(_Record):
    """A product with its variants. Variants are upserted by sku; a variant the record
    leaves out is kept as it is (orders point at it): send ``stock: 0`` to stop selling it."""

    external_id: StoreId
    name_zh: Text200
    name_en: Text200
    category: Slug = Field(description="a category code, e.g. shirt, tie, jacket, trousers")
    material: Text100 | None = None
    description_zh: Text1000 | None = None
    description_en: Text1000 | None = None
    customised: StrictBool = Field(
        default=False, description="made to order: no 7-day no-reason return"
    )
    variants: list[VariantIn] = Field(min_length=1, max_length=500)

    @field_validator("variants")
    @classmethod
    def _distinct_skus(cls, variants: list[VariantIn]) -> list[VariantIn]:
        _no_repeats([v.sku for v in variants], "sku")
        return variants


class CustomerIn(_Record):
    external_id: StoreId
    name: Text100
    phone: Phone | None = None
    email: Email | None = None
    language: Language = "zh"
    membership_level: MembershipLevel = "regular"
    points: Count = 0
    registered_at: UTCTime | None = Field(
        default=None, description="when the customer joined the store; left out: kept as is"
    )


class OrderItemIn(_Record):
    sku: StoreId
    quantity: Annotated[StrictInt, Field(ge=1, le=10_000)]
    unit_price_fen: Fen


class OrderIn(_Record):
    """An order and its lines. Lines are matched to the stored ones by sku (the first line of
    a sku to the first stored line of it, and so on)."""

    order_number: OrderNumber
    customer_external_id: StoreId = Field(description="the customer's external_id")
    status: OrderStatus
    total_fen: Fen = Field(description="what the shopper paid, after discounts and shipping")
    phone: Phone = Field(description="the recipient's phone (anonymous shoppers verify its last 4)")
    address: Text300
    placed_at: UTCTime
    paid_at: UTCTime | None = None
    items: list[OrderItemIn] = Field(min_length=1, max_length=200)

    @field_validator("paid_at")
    @classmethod
    def _paid_after_placed(cls, paid_at: datetime | None, info: ValidationInfo) -> datetime | None:
        placed_at = info.data.get("placed_at")
        if paid_at is not None and placed_at is not None and paid_at < placed_at:
            raise ValueError("paid_at is before placed_at")
        return paid_at


class TrackingEventIn(_Record):
    occurred_at: UTCTime
    status: ShipmentStatus
    location_zh: Text100
    location_en: Text100


class ShipmentIn(_Record):
    """The shipment of one order. Tracking events are added, or updated when one with the same
    time and status comes again; events are history, so none is ever removed."""

    order_number: OrderNumber
    carrier: Carrier
    tracking_number: TrackingNumber | None = None
    status: ShipmentStatus
    promised_at: UTCTime = Field(description="the delivery the shopper was promised")
    estimated_at: UTCTime | None = None
    shipped_at: UTCTime | None = None
    delivered_at: UTCTime | None = None
    delay_reason: DelayReason | None = None
    events: list[TrackingEventIn] = Field(default_factory=list, max_length=500)

    @field_validator("events")
    @classmethod
    def _distinct_events(cls, events: list[TrackingEventIn]) -> list[TrackingEventIn]:
        _no_repeats([(e.occurred_at, e.status) for e in events], "time and status")
        return events


def _no_repeats(keys: Sequence[object], what: str) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"two entries with the same {what}: {key}")
        seen.add(key)


# --- reports and problems -------------------------------------------------------------------


@dataclass(frozen=True)
class IngestReport:
    """What a batch did: how many records were new, changed or already as sent."""

    kind: str
    received: int
    created: int
    updated: int
    unchanged: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    index: int | None  # the record's position in the batch; None for the batch as a whole
    field: str
    message: str
    id: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "id": self.id, "field": self.field, "message": self.message}


KINDS: dict[str, tuple[type[_Record], str]] = {
    # batch key: (record model, the field that names a record)
    "products": (ProductIn, "external_id"),
    "customers": (CustomerIn, "external_id"),
    "orders": (OrderIn, "order_number"),
    "shipments": (ShipmentIn, "order_number"),
}


def _error(problems: list[Problem]) -> IngestError:
    problems = sorted(problems, key=lambda p: (p.index is not None, p.index or 0))
    return IngestError(
        [p.to_dict() for p in problems[:MAX_PROBLEMS]],
        total=len(problems),
        records=len({p.index for p in problems if p.index is not None}),
    )


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise _error(problems)


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def problems_from_validation(
    errors: Iterable[Mapping[str, Any]], body: Any, *, prefix: Sequence[int | str] = ()
) -> IngestError | BatchTooLarge:
    """Turn pydantic's errors for a batch ``{"<kind>": [records]}`` into one domain error:
    a problem per record and field, or ``BatchTooLarge``."""
    errors = list(errors)
    problems: list[Problem] = []
    for error in errors:
        loc = tuple(error.get("loc", ()))[len(prefix) :]
        if len(loc) == 1 and loc[0] in KINDS and error.get("type") == "too_long":
            records = body.get(loc[0]) if isinstance(body, dict) else None
            size = len(records) if isinstance(records, list) else MAX_BATCH + 1
            return BatchTooLarge(size, MAX_BATCH)
        message = _message(error)
        if error.get("type") == "json_invalid":
            loc = ()
        if len(loc) >= 2 and loc[0] in KINDS and isinstance(loc[1], int):
            kind, index = str(loc[0]), loc[1]
            problems.append(
                Problem(
                    index, _field_path(loc[2:]) or "record", message, _record_id(body, kind, index)
                )
            )
        else:
            problems.append(Problem(None, _field_path(loc) or "body", message))
    return _error(problems or [Problem(None, "body", "invalid batch")])


# Patterns above, in words.
_PATTERNS = {
    r"^[!-~]+$": "should be printable ASCII without spaces",
    r"^[a-z0-9]+(-[a-z0-9]+)*$": "should be a lower-case code: letters, digits and dashes",
    r"^\+?[0-9][0-9 -]{3,30}$": "should be a phone number: digits, spaces and dashes, "
    "optionally a leading +",
    r"^[^@\s]+@[^@\s]+$": "should be an e-mail address",
}


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx = error.get("type"), error.get("ctx") or {}
    message = str(error.get("msg", "invalid"))
    if kind == "json_invalid":
        return f"not valid JSON: {ctx.get('error', message)}"
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(ctx.get("pattern")), message)
    if kind == "timezone_aware":
        return "needs a time zone, e.g. 2026-11-18T20:15:00+08:00 or 2026-11-18T12:15:00Z"
    if kind == "value_error":
        return str(ctx.get("error", message))
    return message


def _record_id(body: Any, kind: str, index: int) -> str | None:
    try:
        value = body[kind][index].get(KINDS[kind][1])
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


R = TypeVar("R", bound=_Record)


def parse(model: type[R], records: Sequence[Any], *, kind: str) -> list[R]:
    """Validate raw records (e.g. parsed JSON) into ``model``; every problem of every record
    is raised together as one ``IngestError``."""
    if len(records) > MAX_BATCH:
        raise BatchTooLarge(len(records), MAX_BATCH)
    parsed: list[R] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(records):
        try:
            parsed.append(model.model_validate(raw))
        except ValidationError as exc:
            errors.extend(
                {**e, "loc": (kind, index, *e["loc"])} for e in exc.errors(include_url=False)
            )
    if errors:
        raise problems_from_validation(errors, {kind: list(records)})
    return parsed


def _check_batch(records: Sequence[Any], key: Callable[[Any], str], field: str) -> list[Problem]:
    if len(records) > MAX_BATCH:
        raise BatchTooLarge(len(records), MAX_BATCH)
    first: dict[str, int] = {}
    problems = []
    for index, record in enumerate(records):
        value = key(record)
        if value in first:
            problems.append(
                Problem(index, field, f"also record {first[value]} of this batch", value)
            )
        else:
            first[value] = index
    return problems


# --- bulk look-ups --------------------------------------------------------------------------


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    values = sorted(set(values))
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _ids_by(session: Session, column: Any, id_column: Any, values: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(values):
        found.update(
            session.execute(select(column, id_column).where(column.in_(chunk))).tuples().all()
        )
    return found


T = TypeVar("T")


def _load(
    session: Session, model: type[T], column: Any, values: Iterable[str], *opts: Any
) -> list[T]:
    rows: list[T] = []
    for chunk in _chunks(values):
        rows.extend(session.scalars(select(model).where(column.in_(chunk)).options(*opts)))
    return rows


def _apply(row: object, values: Mapping[str, object]) -> bool:
    """Set the attributes that differ; True if any did. Equal datetimes in other zones are
    equal, so a replay in +08:00 of what was sent in UTC changes nothing."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _insert_returning_ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT new rows in bulk (far cheaper than the unit of work for thousands of rows);
    their ids in the order given."""
    if not rows:
        return []
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(model), rows)


class _Tally:
    def __init__(self) -> None:
        self.created = self.updated = self.unchanged = 0

    def count(self, *, created: bool, changed: bool) -> None:
        if created:
            self.created += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1

    def report(self, kind: str, received: int) -> IngestReport:
        return IngestReport(kind, received, self.created, self.updated, self.unchanged)


# --- the upserts ----------------------------------------------------------------------------


def upsert_catalogue(*, session: Session, products: Sequence[ProductIn]) -> IngestReport:
    """Create or update products and their variants (by ``external_id`` and ``sku``).

    A sku that belongs to another product is an error: skus are unique in the store."""
    problems = _check_batch(products, lambda p: p.external_id, "external_id")
    sku_owner: dict[str, tuple[int, str]] = {}
    for index, product in enumerate(products):
        for position, variant in enumerate(product.variants):
            if variant.sku in sku_owner and sku_owner[variant.sku][1] != product.external_id:
                problems.append(
                    Problem(
                        index,
                        f"variants[{position}].sku",
                        f"sku {variant.sku} is also in record {sku_owner[variant.sku][0]}",
                        product.external_id,
                    )
                )
            sku_owner.setdefault(variant.sku, (index, product.external_id))
    existing = {
        p.external_id: p
        for p in _load(
            session,
            Product,
            Product.external_id,
            [p.external_id for p in products],
            selectinload(Product.variants),
        )
    }
    stored_owner: dict[str, str] = {}
    for chunk in _chunks(sku_owner):
        stored_owner.update(
            session.execute(
                select(Variant.sku, Product.external_id).join(Product).where(Variant.sku.in_(chunk))
            )
            .tuples()
            .all()
        )
    for index, product in enumerate(products):
        for position, variant in enumerate(product.variants):
            owner = stored_owner.get(variant.sku)
            if owner is not None and owner != product.external_id:
                problems.append(
                    Problem(
                        index,
                        f"variants[{position}].sku",
                        f"sku {variant.sku} belongs to product {owner}",
                        product.external_id,
                    )
                )
    _raise(problems)

    tally = _Tally()
    new = [p for p in products if p.external_id not in existing]
    with session.begin_nested():
        for record in products:
            row = existing.get(record.external_id)
            if row is None:
                tally.count(created=True, changed=True)
                continue
            changed = _apply(row, record.model_dump(exclude={"variants"}))
            stored = {v.sku: v for v in row.variants}
            for variant in record.variants:
                fields = variant.model_dump()
                current = stored.get(variant.sku)
                if current is None:
                    row.variants.append(Variant(**fields))
                    changed = True
                else:
                    changed = _apply(current, fields) or changed
            tally.count(created=False, changed=changed)
        ids = _insert_returning_ids(
            session, Product, [p.model_dump(exclude={"variants"}) for p in new]
        )
        _insert(
            session,
            Variant,
            [
                {**v.model_dump(), "product_id": product_id}
                for p, product_id in zip(new, ids, strict=True)
                for v in p.variants
            ],
        )
    return tally.report("products", len(products))


def upsert_customers(*, session: Session, customers: Sequence[CustomerIn]) -> IngestReport:
    """Create or update customers by ``external_id``."""
    _raise(_check_batch(customers, lambda c: c.external_id, "external_id"))
    existing = {
        c.external_id: c
        for c in _load(session, Customer, Customer.external_id, [c.external_id for c in customers])
    }
    tally = _Tally()
    new: list[dict[str, Any]] = []
    with session.begin_nested():
        for record in customers:
            values = record.model_dump(exclude={"registered_at"})
            if record.registered_at is not None:
                values["created_at"] = record.registered_at
            row = existing.get(record.external_id)
            if row is None:
                new.append(values)
                tally.count(created=True, changed=True)
            else:
                tally.count(created=False, changed=_apply(row, values))
        _insert(session, Customer, new)
    return tally.report("customers", len(customers))


def upsert_orders(*, session: Session, orders: Sequence[OrderIn]) -> IngestReport:
    """Create or update orders and their lines by ``order_number``. The customer
    (``customer_external_id``) and every sku must be known already: send customers and the
    catalogue first."""
    problems = _check_batch(orders, lambda o: o.order_number, "order_number")
    customer_ids = _ids_by(
        session, Customer.external_id, Customer.id, [o.customer_external_id for o in orders]
    )
    variant_ids = _ids_by(
        session, Variant.sku, Variant.id, [i.sku for o in orders for i in o.items]
    )
    for index, order in enumerate(orders):
        if order.customer_external_id not in customer_ids:
            problems.append(
                Problem(
                    index,
                    "customer_external_id",
                    f"no customer {order.customer_external_id}: send the customer first",
                    order.order_number,
                )
            )
        for position, item in enumerate(order.items):
            if item.sku not in variant_ids:
                problems.append(
                    Problem(
                        index,
                        f"items[{position}].sku",
                        f"no variant with sku {item.sku}: send the catalogue first",
                        order.order_number,
                    )
                )
    existing = {
        o.order_number: o
        for o in _load(
            session,
            Order,
            Order.order_number,
            [o.order_number for o in orders],
            selectinload(Order.items),
        )
    }
    # Plan the lines first: a line that goes away must not have a return or exchange.
    plans: dict[str, tuple[list[tuple[OrderItem | None, OrderItemIn]], list[OrderItem]]] = {}
    if not problems:
        for order in orders:
            row = existing.get(order.order_number)
            plans[order.order_number] = _plan_lines(row, order, variant_ids)
        leaving = {item.id: number for number, (_, gone) in plans.items() for item in gone}
        if leaving:
            claimed = set(
                session.scalars(
                    select(ServiceRequest.order_item_id).where(
                        ServiceRequest.order_item_id.in_(list(leaving))
                    )
                )
            )
            index_of = {o.order_number: i for i, o in enumerate(orders)}
            for item_id in sorted(claimed):
                number = leaving[item_id]
                problems.append(
                    Problem(
                        index_of[number],
                        "items",
                        "a line with a return or exchange request cannot be removed",
                        number,
                    )
                )
    _raise(problems)

    tally = _Tally()
    new: list[OrderIn] = []
    with session.begin_nested():
        for record in orders:
            values = record.model_dump(exclude={"items", "customer_external_id"})
            values["customer_id"] = customer_ids[record.customer_external_id]
            row = existing.get(record.order_number)
            if row is None:
                new.append(record)
                tally.count(created=True, changed=True)
                continue
            changed = _apply(row, values)
            matched, gone = plans[record.order_number]
            for current, line in matched:
                fields = {
                    "variant_id": variant_ids[line.sku],
                    "quantity": line.quantity,
                    "unit_price_fen": line.unit_price_fen,
                }
                if current is None:
                    row.items.append(OrderItem(**fields))
                    changed = True
                else:
                    changed = _apply(current, fields) or changed
            for stale in gone:
                row.items.remove(stale)
                session.delete(stale)
                changed = True
            tally.count(created=False, changed=changed)
        ids = _insert_returning_ids(
            session,
            Order,
            [
                {
                    **o.model_dump(exclude={"items", "customer_external_id"}),
                    "customer_id": customer_ids[o.customer_external_id],
                }
                for o in new
            ],
        )
        _insert(
            session,
            OrderItem,
            [
                {
                    "order_id": order_id,
                    "variant_id": variant_ids[line.sku],
                    "quantity": line.quantity,
                    "unit_price_fen": line.unit_price_fen,
                }
                for o, order_id in zip(new, ids, strict=True)
                for line in o.items
            ],
        )
    return tally.report("orders", len(orders))


def _plan_lines(
    row: Order | None, order: OrderIn, variant_ids: Mapping[str, int]
) -> tuple[list[tuple[OrderItem | None, OrderItemIn]], list[OrderItem]]:
    """Pair the record's lines with the stored ones (the n-th line of a sku with the n-th
    stored line of that variant); the stored lines left over are going away."""
    stored: dict[int, list[OrderItem]] = defaultdict(list)
    for item in sorted(row.items if row is not None else [], key=lambda i: i.id):
        stored[item.variant_id].append(item)
    matched: list[tuple[OrderItem | None, OrderItemIn]] = []
    for line in order.items:
        same = stored.get(variant_ids[line.sku])
        matched.append((same.pop(0) if same else None, line))
    gone = [item for items in stored.values() for item in items]
    return matched, gone


def upsert_shipments(*, session: Session, shipments: Sequence[ShipmentIn]) -> IngestReport:
    """Create or update each order's shipment (by ``order_number``, one per order) and add its
    tracking events. The order must be known already."""
    problems = _check_batch(shipments, lambda s: s.order_number, "order_number")
    order_ids = _ids_by(session, Order.order_number, Order.id, [s.order_number for s in shipments])
    for index, shipment in enumerate(shipments):
        if shipment.order_number not in order_ids:
            problems.append(
                Problem(
                    index,
                    "order_number",
                    f"no order {shipment.order_number}: send the order first",
                    shipment.order_number,
                )
            )
    _raise(problems)
    existing: dict[int, Shipment] = {}
    ids = list(order_ids.values())
    for start in range(0, len(ids), _IN_CHUNK):
        for found in session.scalars(
            select(Shipment)
            .where(Shipment.order_id.in_(ids[start : start + _IN_CHUNK]))
            .options(selectinload(Shipment.events))
        ):
            existing[found.order_id] = found

    tally = _Tally()
    new: list[ShipmentIn] = []
    with session.begin_nested():
        for record in shipments:
            values = record.model_dump(exclude={"events", "order_number"})
            row = existing.get(order_ids[record.order_number])
            if row is None:
                new.append(record)
                tally.count(created=True, changed=True)
                continue
            changed = _apply(row, values)
            stored = {(e.occurred_at, e.status): e for e in row.events}
            for event in record.events:
                fields = event.model_dump()
                current = stored.get((event.occurred_at, event.status))
                if current is None:
                    row.events.append(ShipmentEvent(**fields))
                    changed = True
                else:
                    changed = _apply(current, fields) or changed
            tally.count(created=False, changed=changed)
        ids = _insert_returning_ids(
            session,
            Shipment,
            [
                {
                    **s.model_dump(exclude={"events", "order_number"}),
                    "order_id": order_ids[s.order_number],
                }
                for s in new
            ],
        )
        _insert(
            session,
            ShipmentEvent,
            [
                {**e.model_dump(), "shipment_id": shipment_id}
                for s, shipment_id in zip(new, ids, strict=True)
                for e in s.events
            ],
        )
    return tally.report("shipments", len(shipments))
