"""/api/store: the store's systems push their data (against the shared seeded SQLite app
database; every record here has a T- id and is deleted again after each test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from api.main import create_app
from bot.db import session_scope
from bot.models import Customer, Order, OrderItem, Product, Shipment, ShipmentEvent, Variant
from bot.settings import Settings
from tests.api.conftest import FakeEngine
from tests.bot.test_ingest import customer, order, product, shipment

KEY = "test-store-api-key"
AUTH = {"authorization": f"Bearer {KEY}"}


def _forget_test_records() -> None:
    with session_scope() as session:
        orders = select(Order.id).where(Order.order_number.like("T-%")).scalar_subquery()
        shipments = select(Shipment.id).where(Shipment.order_id.in_(orders)).scalar_subquery()
        products = select(Product.id).where(Product.external_id.like("T-%")).scalar_subquery()
        session.execute(delete(ShipmentEvent).where(ShipmentEvent.shipment_id.in_(shipments)))
        session.execute(delete(Shipment).where(Shipment.order_id.in_(orders)))
        session.execute(delete(OrderItem).where(OrderItem.order_id.in_(orders)))
        session.execute(delete(Order).where(Order.order_number.like("T-%")))
        session.execute(delete(Variant).where(Variant.product_id.in_(products)))
        session.execute(delete(Product).where(Product.external_id.like("T-%")))
        session.execute(delete(Customer).where(Customer.external_id.like("T-%")))


@pytest.fixture
def store(settings: Settings, engine: FakeEngine) -> Iterator[TestClient]:
    keyed = settings.model_copy(update={"store_api_key": KEY})
    app = create_app(keyed, engine_transport=httpx.MockTransport(engine.handler))
    try:
        with TestClient(app) as client:
            yield client
    finally:
        _forget_test_records()


def _customers(*external_ids: str) -> set[str]:
    with session_scope() as session:
        return set(
            session.scalars(
                select(Customer.external_id).where(Customer.external_id.in_(external_ids))
            )
        )


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-key"},
        {"authorization": f"Basic {KEY}"},
        {"authorization": KEY},
    ],
    ids=["none", "wrong", "basic", "bare"],
)
def test_the_store_api_key_is_required(store: TestClient, headers: dict[str, str]) -> None:
    response = store.post("/api/store/customers", json={"customers": [customer()]}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert _customers("T-C1") == set()


def test_a_malformed_body_is_refused_before_it_is_read_without_a_key(store: TestClient) -> None:
    response = store.post(
        "/api/store/customers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    response = store.post("/api/store/customers", json={"customers": [{"name": 1}]})
    assert response.status_code == 401


# --- a batch in, and again ------------------------------------------------------------------


def test_a_store_loads_its_data_and_replays_it(store: TestClient) -> None:
    batches = [
        ("catalogue", {"products": [product()]}),
        ("customers", {"customers": [customer()]}),
        ("orders", {"orders": [order()]}),
        ("shipments", {"shipments": [shipment()]}),
    ]
    for path, body in batches:
        response = store.post(f"/api/store/{path}", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json() | {"kind": None} == {
            "kind": None,
            "received": 1,
            "created": 1,
            "updated": 0,
            "unchanged": 0,
        }
    for path, body in batches:
        response = store.post(f"/api/store/{path}", json=body, headers=AUTH)
        assert (response.json()["unchanged"], response.json()["created"]) == (1, 0)
    changed = store.post(
        "/api/store/orders", json={"orders": [order(status="shipped")]}, headers=AUTH
    )
    assert changed.json()["updated"] == 1
    with session_scope() as session:
        row = session.scalar(select(Order).where(Order.order_number == "T-5001"))
        assert row is not None and row.status == "shipped" and row.shipment is not None
        assert row.shipment.events[0].location_en == "Hangzhou warehouse"


# --- problems -------------------------------------------------------------------------------


def test_bad_records_are_listed_and_nothing_is_written(store: TestClient) -> None:
    body = {
        "customers": [
            customer("T-OK"),
            customer("T-BAD", points="10"),
            customer("T-LATE", registered_at="2026-01-01T10:00:00"),
        ]
    }
    response = store.post("/api/store/customers", json=body, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_records"
    assert "nothing of the batch was written" in error["message"]
    assert [(p["index"], p["id"], p["field"]) for p in error["problems"]] == [
        (1, "T-BAD", "points"),
        (2, "T-LATE", "registered_at"),
    ]
    assert all(p["message"] for p in error["problems"])
    assert _customers("T-OK", "T-BAD", "T-LATE") == set()


def test_unknown_references_are_422_with_the_record(store: TestClient) -> None:
    response = store.post(
        "/api/store/orders", json={"orders": [order(customer_id="T-NOBODY")]}, headers=AUTH
    )
    assert response.status_code == 422
    problems = response.json()["error"]["problems"]
    assert {(p["index"], p["id"], p["field"]) for p in problems} == {
        (0, "T-5001", "customer_external_id"),
        (0, "T-5001", "items[0].sku"),
    }


def test_a_body_that_is_not_a_batch_is_explained(store: TestClient) -> None:
    response = store.post(
        "/api/store/customers",
        content=b'{"customers": [',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 422
    (problem,) = response.json()["error"]["problems"]
    assert problem["index"] is None and problem["message"].startswith("not valid JSON")
    response = store.post("/api/store/customers", json={"clients": []}, headers=AUTH)
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["error"]["problems"]}
    assert fields == {"customers", "clients"}


# --- size limits ----------------------------------------------------------------------------


def test_a_batch_over_1000_records_is_refused_clearly(store: TestClient) -> None:
    body = {"customers": [customer(f"T-{i}") for i in range(1001)]}
    response = store.post("/api/store/customers", json=body, headers=AUTH)
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["limit"], error["size"]) == ("batch_too_large", 1000, 1001)
    assert "smaller batches" in error["message"]
    assert _customers("T-0") == set()


def test_batches_may_be_bigger_than_other_requests_up_to_5_mib(store: TestClient) -> None:
    body = {"customers": [customer(f"T-{i}", name="顾客" * 40) for i in range(1000)]}
    content = json.dumps(body).encode()
    assert 64 * 1024 < len(content) < 5 * 1024 * 1024
    response = store.post(
        "/api/store/customers",
        content=content,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1000

    huge = b'{"customers": [' + b" " * (5 * 1024 * 1024) + b"]}"
    response = store.post(
        "/api/store/customers", content=huge, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    # Elsewhere the 64 KiB limit still holds.
    response = store.post(
        "/api/chat/session", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


# --- documentation --------------------------------------------------------------------------


def test_the_openapi_schema_documents_the_routes_with_examples(store: TestClient) -> None:
    schema: dict[str, Any] = store.get("/openapi.json").json()
    for path, key in [
        ("catalogue", "products"),
        ("customers", "customers"),
        ("orders", "orders"),
        ("shipments", "shipments"),
    ]:
        operation = schema["paths"][f"/api/store/{path}"]["post"]
        assert operation["tags"] == ["store data"]
        assert operation["summary"] and "all or nothing" in operation["description"]
        assert operation["security"] == [{"store API key": []}]
        content = operation["requestBody"]["content"]["application/json"]
        example = content["examples"]["store"]["value"]
        assert example[key] and {"401", "413", "422"} <= operation["responses"].keys()
    order_schema = schema["components"]["schemas"]["OrderIn"]
    assert set(order_schema["required"]) >= {"order_number", "customer_external_id", "items"}
    assert schema["components"]["securitySchemes"]["store API key"]["scheme"] == "bearer"


def test_every_documented_example_is_accepted(store: TestClient) -> None:
    """A store developer copying the examples from /docs gets a 200, in this order."""
    schema: dict[str, Any] = store.get("/openapi.json").json()
    bodies = {
        path: schema["paths"][f"/api/store/{path}"]["post"]["requestBody"]["content"][
            "application/json"
        ]["examples"]["store"]["value"]
        for path in ("catalogue", "customers", "orders", "shipments")
    }
    # The examples use the demo catalogue's real skus plus ids of their own; retag those.
    text = json.dumps(bodies).replace("C10001", "T-C10001").replace("5100000000001", "T-51")
    bodies = json.loads(text)
    bodies["catalogue"]["products"][0]["external_id"] = "T-OXF"
    for variant in bodies["catalogue"]["products"][0]["variants"]:
        variant["sku"] = "T-" + variant["sku"]
    for item in bodies["orders"]["orders"][0]["items"]:
        if item["sku"].startswith("P-OXF"):
            item["sku"] = "T-" + item["sku"]
    for path in ("catalogue", "customers", "orders", "shipments"):
        response = store.post(f"/api/store/{path}", json=bodies[path], headers=AUTH)
        assert response.status_code == 200, (path, response.text)
