"""Store data in: the store's systems push their catalogue, customers, orders and shipments.

``POST /api/store/{catalogue,customers,orders,shipments}`` with ``Authorization: Bearer
<store API key>`` (``KEFU_STORE_API_KEY``; ``python -m bot.cli store-api-key`` prints it).
Each takes a batch of up to 1,000 records (5 MiB) and upserts them by the store's own ids;
all the logic is in bot/services/ingest.py, which the demo seed goes through as well.

Errors are ``{"error": {"code", "message", ...}}``: 401 ``invalid_token``, 413
``body_too_large`` / ``batch_too_large``, 422 ``invalid_records`` with ``problems``: one
``{"index", "id", "field", "message"}`` per problem. A refused batch wrote nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Body, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import run_with_retry
from bot.errors import InvalidToken
from bot.services import ingest
from bot.services.ingest import (
    MAX_BATCH,
    CustomerIn,
    IngestReport,
    OrderIn,
    ProductIn,
    ShipmentIn,
)
from bot.settings import Settings

PREFIX = "/api/store"
MAX_BODY_BYTES = 5 * 1024 * 1024  # api/main.py lets these routes past its 64 KiB limit

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="store API key",
    description="`Authorization: Bearer <KEFU_STORE_API_KEY>`; "
    "`python -m bot.cli store-api-key` prints it.",
)


def check_store_key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    settings: Settings = request.app.state.settings
    expected = settings.store_api_key
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("send the store API key: Authorization: Bearer <key>")
    if not expected or not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise InvalidToken("wrong store API key")


async def store_system(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Only the store's systems, holding the store API key, may send data."""
    check_store_key(request, credentials)


class IngestRoute(APIRoute):
    """Reports a malformed batch the way the service reports its problems (index, field,
    message per record) rather than FastAPI's default, and only to a caller with the key."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                check_store_key(request, await bearer(request))
                raise ingest.problems_from_validation(
                    exc.errors(), exc.body, prefix=("body",)
                ) from None

        return route


router = APIRouter(
    prefix=PREFIX,
    tags=["store data"],
    route_class=IngestRoute,
    dependencies=[Depends(store_system)],
)


# --- request and response bodies --------------------------------------------------------


class CatalogueBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: list[ProductIn] = Field(max_length=MAX_BATCH)


class CustomerBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: list[CustomerIn] = Field(max_length=MAX_BATCH)


class OrderBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orders: list[OrderIn] = Field(max_length=MAX_BATCH)


class ShipmentBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shipments: list[ShipmentIn] = Field(max_length=MAX_BATCH)


class IngestResult(BaseModel):
    kind: str = Field(description="products, customers, orders or shipments")
    received: int
    created: int
    updated: int
    unchanged: int = Field(description="records already exactly as sent (a replay)")


class Problem(BaseModel):
    index: int | None = Field(description="the record's position in the batch (from 0)")
    id: str | None = Field(description="the record's id, when it has a readable one")
    field: str = Field(description="where in the record, e.g. items[1].sku")
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    problems: list[Problem] | None = None
    limit: int | None = None
    size: int | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no store API key, or a wrong one"},
    413: {"model": ErrorBody, "description": "more than 1,000 records, or a body over 5 MiB"},
    422: {
        "model": ErrorBody,
        "description": "records with problems, each listed; nothing of the batch was written",
        "content": {
            "application/json": {
                "example": {
                    "error": {
                        "code": "invalid_records",
                        "message": "2 problem(s) in 2 record(s); nothing of the batch was written",
                        "problems": [
                            {
                                "index": 0,
                                "id": "5100000000001",
                                "field": "items[0].sku",
                                "message": "no variant with sku P-OXF-BLUE-Q: send the "
                                "catalogue first",
                            },
                            {
                                "index": 3,
                                "id": "5100000000004",
                                "field": "placed_at",
                                "message": "needs a time zone, e.g. 2026-11-18T20:15:00+08:00 or "
                                "2026-11-18T12:15:00Z",
                            },
                        ],
                    }
                }
            }
        },
    },
}

COMMON = (
    "\n\nUpserts by the store's own ids: send each record whole, as your system holds it now; "
    "optional fields left out are stored empty. Sending the same batch again changes "
    "nothing (the answer counts it as `unchanged`), so a failed or timed-out request is "
    "simply sent again. A batch is all or nothing: if any record has a problem, nothing is "
    "written and the answer lists every problem with the record's index, id and field. "
    "Times are ISO 8601 with a time zone (`+08:00` or `Z`); money is in fen. At most "
    f"{MAX_BATCH:,} records and 5 MiB per request."
)


def _example(summary: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"store": {"summary": summary, "value": value}}


CATALOGUE_EXAMPLE = _example(
    "one product with two variants",
    {
        "products": [
            {
                "external_id": "P-OXF",
                "name_zh": "牛津纺衬衫",
                "name_en": "Oxford shirt",
                "category": "shirt",
                "material": "100% cotton",
                "description_zh": "牛津纺衬衫，面料：100% cotton。",
                "description_en": "Oxford shirt, 100% cotton.",
                "customised": False,
                "variants": [
                    {
                        "sku": "P-OXF-BLUE-M",
                        "size": "M",
                        "colour": "blue",
                        "price_fen": 19900,
                        "stock": 30,
                    },
                    {
                        "sku": "P-OXF-BLUE-L",
                        "size": "L",
                        "colour": "blue",
                        "price_fen": 19900,
                        "stock": 0,
                    },
                ],
            }
        ]
    },
)
CUSTOMER_EXAMPLE = _example(
    "a member",
    {
        "customers": [
            {
                "external_id": "C10001",
                "name": "王芳",
                "phone": "13800138000",
                "email": "wangfang@example.com",
                "language": "zh",
                "membership_level": "gold",
                "points": 2400,
                "registered_at": "2025-03-08T10:00:00+08:00",
            }
        ]
    },
)
ORDER_EXAMPLE = _example(
    "a paid order with two lines",
    {
        "orders": [
            {
                "order_number": "5100000000001",
                "customer_external_id": "C10001",
                "status": "paid",
                "total_fen": 38800,
                "phone": "13800138000",
                "address": "上海市徐汇区漕溪北路88号",
                "placed_at": "2026-11-18T20:15:00+08:00",
                "paid_at": "2026-11-18T20:17:30+08:00",
                "items": [
                    {"sku": "P-OXF-BLUE-M", "quantity": 1, "unit_price_fen": 19900},
                    {"sku": "P-SLK-RED-F", "quantity": 1, "unit_price_fen": 16900},
                ],
            }
        ]
    },
)
SHIPMENT_EXAMPLE = _example(
    "a late shipment in transit",
    {
        "shipments": [
            {
                "order_number": "5100000000001",
                "carrier": "sf",
                "tracking_number": "SF123456789012",
                "status": "in_transit",
                "promised_at": "2026-11-21T18:00:00+08:00",
                "estimated_at": "2026-11-23T18:00:00+08:00",
                "shipped_at": "2026-11-19T09:30:00+08:00",
                "delivered_at": None,
                "delay_reason": "bad_weather",
                "events": [
                    {
                        "occurred_at": "2026-11-19T09:30:00+08:00",
                        "status": "picked_up",
                        "location_zh": "杭州仓",
                        "location_en": "Hangzhou warehouse",
                    },
                    {
                        "occurred_at": "2026-11-20T02:10:00+08:00",
                        "status": "in_transit",
                        "location_zh": "上海转运中心",
                        "location_en": "Shanghai hub",
                    },
                ],
            }
        ]
    },
)


async def _ingest(work: Callable[[Session], IngestReport]) -> IngestResult:
    def attempt() -> IngestReport:
        try:
            return run_with_retry(work)
        except IntegrityError:
            # Another batch created one of these records at the same moment; the batch is
            # idempotent, so running it again finds that row and updates it.
            return run_with_retry(work)

    report = await to_thread.run_sync(attempt)
    return IngestResult(**report.to_dict())


@router.post(
    "/catalogue",
    summary="Upsert products and their variants",
    description="Products by `external_id`, their variants by `sku` (unique across the "
    "store). A variant left out of a product's record is kept (orders point at it): send "
    "`stock: 0` to stop selling it. Colour and category are lower-case codes "
    "(`light-blue`, `trousers`)." + COMMON,
    responses=ERRORS,
)
async def ingest_catalogue(
    batch: Annotated[CatalogueBatch, Body(openapi_examples=CATALOGUE_EXAMPLE)],
) -> IngestResult:
    return await _ingest(lambda s: ingest.upsert_catalogue(session=s, products=batch.products))


@router.post(
    "/customers",
    summary="Upsert customers",
    description="Customers by `external_id` — the id the store's login token carries "
    "(see the README: how a store logs a shopper in). `registered_at` left out keeps the "
    "stored value." + COMMON,
    responses=ERRORS,
)
async def ingest_customers(
    batch: Annotated[CustomerBatch, Body(openapi_examples=CUSTOMER_EXAMPLE)],
) -> IngestResult:
    return await _ingest(lambda s: ingest.upsert_customers(session=s, customers=batch.customers))


@router.post(
    "/orders",
    summary="Upsert orders and their lines",
    description="Orders by `order_number`. The customer (`customer_external_id`) and every "
    "line's `sku` must be known: send customers and the catalogue first, or the order is "
    "refused with a problem naming the missing one. Lines are matched to stored ones by "
    "sku; a line with a return or exchange cannot be removed." + COMMON,
    responses=ERRORS,
)
async def ingest_orders(
    batch: Annotated[OrderBatch, Body(openapi_examples=ORDER_EXAMPLE)],
) -> IngestResult:
    return await _ingest(lambda s: ingest.upsert_orders(session=s, orders=batch.orders))


@router.post(
    "/shipments",
    summary="Upsert shipments and tracking events",
    description="One shipment per order, by `order_number` (the order must be known). "
    "Tracking events are history: each is added once, keyed by its time and status, and "
    "never removed, so sending the full list every time is fine. A `delay_reason` makes the "
    "assistant explain and apologise for the delay when the shopper asks." + COMMON,
    responses=ERRORS,
)
async def ingest_shipments(
    batch: Annotated[ShipmentBatch, Body(openapi_examples=SHIPMENT_EXAMPLE)],
) -> IngestResult:
    return await _ingest(lambda s: ingest.upsert_shipments(session=s, shipments=batch.shipments))
