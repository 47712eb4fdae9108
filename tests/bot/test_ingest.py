"""The ingestion service on SQLite and PostgreSQL (the ``session`` fixture rolls back)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import cli
from bot.errors import BatchTooLarge, IngestError
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
from bot.seed import demo_store
from bot.services import ingest
from bot.services.ingest import (
    MAX_BATCH,
    CustomerIn,
    OrderIn,
    ProductIn,
    ShipmentIn,
    upsert_catalogue,
    upsert_customers,
    upsert_orders,
    upsert_shipments,
)
from bot.settings import ConfigurationError, Settings
from tests.conftest import FIXED_NOW

CST = timezone(timedelta(hours=8))


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def product(ext: str = "T-TEE", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "external_id": ext,
        "name_zh": "圆领T恤",
        "name_en": "Crew-neck tee",
        "category": "shirt",
        "material": "100% cotton",
        "variants": [
            {
                "sku": f"{ext}-WHITE-M",
                "size": "M",
                "colour": "white",
                "price_fen": 9900,
                "stock": 5,
            },
            {
                "sku": f"{ext}-WHITE-L",
                "size": "L",
                "colour": "white",
                "price_fen": 9900,
                "stock": 0,
            },
        ],
    }
    record.update(changes)
    return record


def customer(ext: str = "T-C1", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "external_id": ext,
        "name": "测试顾客",
        "phone": "13900001111",
        "language": "zh",
        "membership_level": "silver",
        "points": 10,
    }
    record.update(changes)
    return record


def order(number: str = "T-5001", customer_id: str = "T-C1", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "order_number": number,
        "customer_external_id": customer_id,
        "status": "paid",
        "total_fen": 19800,
        "phone": "13900001111",
        "address": "上海市徐汇区1号",
        "placed_at": "2026-11-18T20:15:00+08:00",
        "paid_at": "2026-11-18T20:17:00+08:00",
        "items": [
            {"sku": "T-TEE-WHITE-M", "quantity": 1, "unit_price_fen": 9900},
            {"sku": "P-OXF-BLUE-M", "quantity": 1, "unit_price_fen": 9900},
        ],
    }
    record.update(changes)
    return record


def shipment(number: str = "T-5001", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "order_number": number,
        "carrier": "sf",
        "tracking_number": "SF000011112222",
        "status": "in_transit",
        "promised_at": "2026-11-21T18:00:00+08:00",
        "shipped_at": "2026-11-19T09:30:00+08:00",
        "delay_reason": "bad_weather",
        "events": [
            {
                "occurred_at": "2026-11-19T09:30:00+08:00",
                "status": "picked_up",
                "location_zh": "杭州仓",
                "location_en": "Hangzhou warehouse",
            }
        ],
    }
    record.update(changes)
    return record


def load_products(session: Session, *records: dict[str, Any]) -> ingest.IngestReport:
    return upsert_catalogue(
        session=session, products=ingest.parse(ProductIn, records, kind="products")
    )


def load_customers(session: Session, *records: dict[str, Any]) -> ingest.IngestReport:
    return upsert_customers(
        session=session, customers=ingest.parse(CustomerIn, records, kind="customers")
    )


def load_orders(session: Session, *records: dict[str, Any]) -> ingest.IngestReport:
    return upsert_orders(session=session, orders=ingest.parse(OrderIn, records, kind="orders"))


def load_shipments(session: Session, *records: dict[str, Any]) -> ingest.IngestReport:
    return upsert_shipments(
        session=session, shipments=ingest.parse(ShipmentIn, records, kind="shipments")
    )


def counts(report: ingest.IngestReport) -> tuple[int, int, int]:
    return report.created, report.updated, report.unchanged


def a_store(session: Session) -> None:
    load_products(session, product())
    load_customers(session, customer())
    load_orders(session, order())


# --- create, update, unchanged -------------------------------------------------------------


def test_catalogue_created_then_unchanged_then_updated(session: Session) -> None:
    assert counts(load_products(session, product())) == (1, 0, 0)
    assert counts(load_products(session, product())) == (0, 0, 1)
    changed = product()
    changed["variants"][0]["stock"] = 12
    changed["variants"].append(
        {"sku": "T-TEE-BLACK-M", "size": "M", "colour": "black", "price_fen": 10900, "stock": 3}
    )
    assert counts(load_products(session, changed, product("T-CAP", category="hat"))) == (1, 1, 0)
    row = session.scalar(select(Product).where(Product.external_id == "T-TEE"))
    assert row is not None
    assert {v.sku: v.stock for v in row.variants} == {
        "T-TEE-WHITE-M": 12,
        "T-TEE-WHITE-L": 0,
        "T-TEE-BLACK-M": 3,
    }
    # A variant left out is kept: orders point at it.
    assert counts(load_products(session, product(variants=changed["variants"][:1]))) == (0, 0, 1)
    assert _count(session, Variant) == 220 + 5


def test_customers_created_updated_and_registration_kept(session: Session) -> None:
    registered = "2025-03-08T10:00:00+08:00"
    report = load_customers(session, customer(registered_at=registered), customer("T-C2"))
    assert counts(report) == (2, 0, 0)
    assert counts(load_customers(session, customer("T-C2", points=99))) == (0, 1, 0)
    # Left out, registered_at keeps the stored value; an optional field left out is emptied.
    assert counts(load_customers(session, customer(phone=None))) == (0, 1, 0)
    row = session.scalar(select(Customer).where(Customer.external_id == "T-C1"))
    assert row is not None
    assert row.created_at == datetime(2025, 3, 8, 2, 0, tzinfo=timezone.utc)
    assert row.phone is None


def test_orders_and_their_lines_are_upserted_in_place(session: Session) -> None:
    load_products(session, product())
    load_customers(session, customer())
    assert counts(load_orders(session, order())) == (1, 0, 0)
    assert counts(load_orders(session, order())) == (0, 0, 1)
    row = session.scalar(select(Order).where(Order.order_number == "T-5001"))
    assert row is not None
    line_ids = sorted(i.id for i in row.items)

    changed = order(status="shipped", total_fen=29700)
    changed["items"][0]["quantity"] = 2
    assert counts(load_orders(session, changed)) == (0, 1, 0)
    session.expire_all()
    row = session.scalar(select(Order).where(Order.order_number == "T-5001"))
    assert row is not None and row.status == "shipped"
    assert sorted(i.id for i in row.items) == line_ids  # the same lines, updated
    assert sorted(i.quantity for i in row.items) == [1, 2]

    fewer = order(status="shipped", total_fen=19800)
    fewer["items"] = fewer["items"][:1]
    assert counts(load_orders(session, fewer)) == (0, 1, 0)
    assert _count(session, OrderItem) == 2980 + 1


def test_a_line_with_a_return_cannot_be_removed(session: Session) -> None:
    a_store(session)
    row = session.scalar(select(Order).where(Order.order_number == "T-5001"))
    assert row is not None
    session.add(
        ServiceRequest(
            number="R-T1",
            kind="return",
            reason="size",
            customer_id=row.customer_id,
            order_id=row.id,
            order_item_id=min(i.id for i in row.items),
            message_id="m-t1",
            created_at=FIXED_NOW,
            updated_at=FIXED_NOW,
        )
    )
    session.flush()
    fewer = order()
    fewer["items"] = fewer["items"][1:]
    with pytest.raises(IngestError) as caught:
        load_orders(session, fewer)
    assert caught.value.problems[0]["field"] == "items"
    assert len(session.scalars(select(OrderItem).where(OrderItem.order_id == row.id)).all()) == 2


def test_kefu_own_order_columns_survive_an_upsert(session: Session) -> None:
    a_store(session)
    row = session.scalar(select(Order).where(Order.order_number == "T-5001"))
    assert row is not None
    row.note = "请放门卫"
    row.delay_accepted_at = FIXED_NOW
    session.flush()
    assert counts(load_orders(session, order(status="shipped"))) == (0, 1, 0)
    assert row.note == "请放门卫" and row.delay_accepted_at == FIXED_NOW


def test_shipment_events_are_added_never_removed(session: Session) -> None:
    a_store(session)
    assert counts(load_shipments(session, shipment())) == (1, 0, 0)
    assert counts(load_shipments(session, shipment())) == (0, 0, 1)
    more = shipment()
    more["events"].append(
        {
            "occurred_at": "2026-11-20T02:10:00+08:00",
            "status": "in_transit",
            "location_zh": "上海转运中心",
            "location_en": "Shanghai hub",
        }
    )
    assert counts(load_shipments(session, more)) == (0, 1, 0)
    # Only the newest event sent: the earlier one stays.
    latest = shipment(events=more["events"][1:])
    assert counts(load_shipments(session, latest)) == (0, 0, 1)
    row = session.scalar(select(Shipment).join(Order).where(Order.order_number == "T-5001"))
    assert row is not None
    assert [e.status for e in row.events] == ["picked_up", "in_transit"]
    assert row.delay_reason == "bad_weather"


# --- replay ---------------------------------------------------------------------------------


def test_replaying_the_whole_demo_store_changes_nothing(session: Session) -> None:
    store = demo_store(FIXED_NOW)
    before = {m: _count(session, m) for m in (Customer, Variant, Order, OrderItem, ShipmentEvent)}
    reports = [
        upsert_customers(session=session, customers=store.customers),
        upsert_catalogue(session=session, products=store.products),
        upsert_orders(session=session, orders=store.orders[:MAX_BATCH]),
        upsert_orders(session=session, orders=store.orders[MAX_BATCH:]),
        upsert_shipments(session=session, shipments=store.shipments[:MAX_BATCH]),
        upsert_shipments(session=session, shipments=store.shipments[MAX_BATCH:]),
    ]
    assert all(r.created == r.updated == 0 and r.unchanged == r.received for r in reports)
    assert sum(r.received for r in reports) == 520 + 19 + 2000 + 1916
    assert not session.dirty and not session.new
    assert before == {m: _count(session, m) for m in before}


# --- problems: nothing written --------------------------------------------------------------


def test_a_bad_record_fails_the_whole_batch(session: Session) -> None:
    with pytest.raises(IngestError) as caught:
        load_customers(
            session,
            customer("T-OK"),
            customer("T-BAD", points="10", phone="call me"),
            customer("T-OK2", language="fr", surprise=1),
        )
    problems = caught.value.problems
    assert {(p["index"], p["id"], p["field"]) for p in problems} == {
        (1, "T-BAD", "phone"),
        (1, "T-BAD", "points"),
        (2, "T-OK2", "language"),
        (2, "T-OK2", "surprise"),
    }
    assert "one of: zh, en" in next(p["message"] for p in problems if p["field"] == "language")
    assert session.scalar(select(Customer).where(Customer.external_id == "T-OK")) is None


def test_unknown_references_are_named_and_nothing_is_written(session: Session) -> None:
    load_products(session, product())
    load_customers(session, customer())
    bad_line = order("T-5002")
    bad_line["items"][1]["sku"] = "NO-SUCH-SKU"
    with pytest.raises(IngestError) as caught:
        load_orders(session, order(), order("T-5003", customer_id="T-NOBODY"), bad_line)
    problems = {(p["index"], p["field"]): p["message"] for p in caught.value.problems}
    assert problems.keys() == {(1, "customer_external_id"), (2, "items[1].sku")}
    assert "T-NOBODY" in problems[(1, "customer_external_id")]
    assert "NO-SUCH-SKU" in problems[(2, "items[1].sku")]
    assert session.scalar(select(Order).where(Order.order_number == "T-5001")) is None

    with pytest.raises(IngestError) as caught:
        load_shipments(session, shipment("T-NONE"))
    assert caught.value.problems[0]["field"] == "order_number"


def test_a_sku_of_another_product_is_refused(session: Session) -> None:
    stolen = product()
    stolen["variants"][0]["sku"] = "P-OXF-BLUE-M"
    with pytest.raises(IngestError) as caught:
        load_products(session, stolen)
    assert caught.value.problems[0]["message"] == "sku P-OXF-BLUE-M belongs to product P-OXF"
    assert session.scalar(select(Product).where(Product.external_id == "T-TEE")) is None


def test_an_id_twice_in_a_batch_is_refused(session: Session) -> None:
    with pytest.raises(IngestError) as caught:
        load_customers(session, customer(), customer("T-C2"), customer())
    assert caught.value.problems == [
        {"index": 2, "id": "T-C1", "field": "external_id", "message": "also record 0 of this batch"}
    ]


def test_a_failure_while_writing_leaves_nothing_behind(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction creates a customer between our look-up and our insert: the
    unique violation rolls the whole batch back, not just the one record."""
    session.add(Customer(external_id="T-RACE", name="x"))
    session.flush()
    before = _count(session, Customer)
    records = ingest.parse(CustomerIn, [customer("T-NEW"), customer("T-RACE")], kind="customers")
    monkeypatch.setattr(ingest, "_load", lambda *args, **kwargs: [])  # the look-up saw neither
    with pytest.raises(IntegrityError):
        upsert_customers(session=session, customers=records)
    assert _count(session, Customer) == before
    assert session.scalar(select(Customer).where(Customer.external_id == "T-NEW")) is None


def test_batches_over_the_limit_are_refused(session: Session) -> None:
    too_many = [customer(f"T-{i}") for i in range(MAX_BATCH + 1)]
    with pytest.raises(BatchTooLarge):
        ingest.parse(CustomerIn, too_many, kind="customers")
    records = ingest.parse(CustomerIn, too_many[:2], kind="customers") * (MAX_BATCH // 2 + 1)
    with pytest.raises(BatchTooLarge):
        upsert_customers(session=session, customers=records)


# --- time zones -----------------------------------------------------------------------------


def test_times_are_stored_in_utc_and_the_same_instant_is_unchanged(session: Session) -> None:
    a_store(session)
    row = session.scalar(select(Order).where(Order.order_number == "T-5001"))
    assert row is not None
    session.expire(row)
    assert row.placed_at == datetime(2026, 11, 18, 12, 15, tzinfo=timezone.utc)
    assert row.placed_at.utcoffset() == timedelta(0)
    # The same instants written in UTC, and in another zone, are a replay.
    utc = order(placed_at="2026-11-18T12:15:00Z", paid_at="2026-11-18T04:17:00-08:00")
    assert counts(load_orders(session, utc)) == (0, 0, 1)
    later = order(placed_at=datetime(2026, 11, 18, 20, 16, tzinfo=CST))
    assert counts(load_orders(session, later)) == (0, 1, 0)


def test_a_time_without_a_zone_is_refused(session: Session) -> None:
    with pytest.raises(IngestError) as caught:
        ingest.parse(OrderIn, [order(placed_at="2026-11-18T20:15:00")], kind="orders")
    (problem,) = caught.value.problems
    assert (problem["index"], problem["field"]) == (0, "placed_at")
    assert "time zone" in str(problem["message"])
    with pytest.raises(IngestError) as caught:
        ingest.parse(
            OrderIn, [order(paid_at="2026-11-18T20:00:00+08:00")], kind="orders"
        )  # paid before it was placed
    assert caught.value.problems[0]["field"] == "paid_at"


# --- the store API key ----------------------------------------------------------------------


def test_the_store_api_key_is_generated_once_and_required_in_production(tmp_path: Path) -> None:
    given = {"secret_key": "a", "store_token_secret": "b", "store_api_key": "", "var_dir": tmp_path}
    first = Settings(**given).load_secrets(create=True)
    again = Settings(**given).load_secrets(create=True)
    assert first.store_api_key and again.store_api_key == first.store_api_key
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored["store_api_key"] == first.store_api_key
    with pytest.raises(ConfigurationError, match="KEFU_STORE_API_KEY"):
        Settings(**given, environment="production").load_secrets(create=True)


def test_the_cli_prints_the_store_api_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(secret_key="a", store_token_secret="b", store_api_key="key-123")
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    assert cli.main(["store-api-key"]) == 0
    assert capsys.readouterr().out == "key-123\n"
