"""Privacy API: marketing consent from the widget and from agents, the customer data export
(the admin's, and the shopper's own through a short-lived link) and erasure.

Shopper (``Authorization: Bearer <visitor token>`` and the store's login token in
``X-Customer-Token``: the customer is the one the store's token names *in this request*, as on
the chat socket, so a visitor the store has since logged out is anonymous again):

- ``GET  /api/chat/consent`` → ``{"marketing": bool, "consent": {...} | null,
  "current_version", "needs_renewal"}``
- ``POST /api/chat/consent`` ``{"marketing": bool}`` → the same, after recording the answer
  (source ``widget``). A withdrawal takes effect for every later query at once.
- ``POST /api/chat/export`` → ``{"url": "/api/chat/export/<token>", "expires_at"}``: a
  download link for the shopper's own export, signed (HMAC) for that customer only and valid
  ``KEFU_EXPORT_LINK_MINUTES`` (default 15). Allowed cross-origin from the widget's origins.
- ``GET  /api/chat/export/{token}`` → the export document as an attachment, audit-logged
  (actor customer); a wrong, tampered or expired link is refused (401 ``invalid_token``).

Staff (the console's session cookie ``kefu_staff``; unsafe methods need the session's CSRF
token in ``X-CSRF-Token``, as the agent API; ``GET /api/agent/me`` returns it):

- ``GET  /api/agent/customers/{external_id}/consent`` (agent, supervisor, admin) →
  ``{"marketing", "consent", "history": [...], "current_version", "needs_renewal"}``
- ``POST /api/agent/customers/{external_id}/consent`` ``{"marketing": bool}`` (agent,
  supervisor, admin): recorded with source ``agent``, audit-logged with the staff id.
- ``GET  /api/admin/customers/{external_id}/export`` (admin) → the export document
  (``bot.privacy.export``, with Rasa's tracker events), audit-logged as ``export``.
- ``POST /api/admin/customers/{external_id}/erase`` (admin, CSRF) → the erasure report
  (counts per table, tracker events deleted; ``bot.privacy.erasure``), audit-logged as
  ``erasure``. 409 ``conversations_live`` (nothing erased) while a conversation of the
  customer is not closed; 503 ``tracker_store_unavailable`` when Rasa cannot be reached.

Errors are ``{"error": {"code", "message"}}``: 401 not logged in / no logged-in shopper,
403 wrong role or CSRF token, 404 unknown customer, 409, 422, 503.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db import in_db
from api.errors import error_body
from api.routes.console import LoginRequired, csrf_matches, current_staff
from bot.errors import KefuError
from bot.identity import verify_customer_token, verify_visitor
from bot.models import Customer, Visitor
from bot.privacy.erasure import (
    ConversationsLive,
    EngineTrackers,
    Trackers,
    TrackerStoreUnavailable,
    erase_customer,
)
from bot.privacy.export import export_customer, sign_export_link, verify_export_link
from bot.services import audit, consent
from bot.services.staff import SessionView
from bot.settings import Settings

router = APIRouter(tags=["privacy"])

CONSENT_ROLES = ("agent", "supervisor", "admin")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class PrivacyNotAuthenticated(KefuError):
    code = "not_authenticated"


class PrivacyForbidden(KefuError):
    code = "forbidden"


class ConsentIn(BaseModel):
    marketing: bool


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _trackers(request: Request) -> Trackers:
    """Rasa's tracker store (through the engine channel); tests put a fake in
    ``app.state.privacy_trackers``."""
    given: Trackers | None = getattr(request.app.state, "privacy_trackers", None)
    return given if given is not None else EngineTrackers.from_settings(_settings(request))


# --- who is asking -------------------------------------------------------------------------


async def shopper_customer_id(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_customer_token: Annotated[str | None, Header()] = None,
) -> int:
    """The logged-in shopper: a valid visitor token, and the store's login token naming the
    customer in this very request — the rule of the chat socket (``api.chat``), where a
    visitor whose store login is gone is anonymous, whatever it was linked to before."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise PrivacyNotAuthenticated("visitor token required (Authorization: Bearer …)")
    settings = _settings(request)
    visitor_id = verify_visitor(
        authorization[7:].strip(),
        key=settings.secret_key,
        max_age=timedelta(days=settings.visitor_token_max_age_days),
    )
    if not x_customer_token:
        raise PrivacyNotAuthenticated(
            "log in to the store to manage your data (X-Customer-Token required)"
        )
    external_id = verify_customer_token(
        x_customer_token, key=settings.store_token_secret
    ).external_id

    def work(s: Session) -> tuple[bool, int | None]:
        known = s.scalar(select(Visitor.id).where(Visitor.id == visitor_id)) is not None
        customer = s.scalar(select(Customer.id).where(Customer.external_id == external_id))
        return known, customer

    known, customer_id = await in_db(work)
    if not known:
        raise PrivacyNotAuthenticated("unknown visitor: open the chat again")
    if customer_id is None:
        raise PrivacyNotAuthenticated("the store token names a customer Kefu does not know")
    return customer_id


ShopperId = Annotated[int, Depends(shopper_customer_id)]


def staff_with_role(*roles: str) -> Callable[..., Awaitable[SessionView]]:
    """The console's staff session (``current_staff``) as a JSON API dependency: 401 without
    a session, 403 for another role or, on unsafe methods, a missing CSRF header."""

    async def check(
        request: Request, x_csrf_token: Annotated[str | None, Header()] = None
    ) -> SessionView:
        try:
            who = await current_staff(request)
        except LoginRequired as exc:
            raise PrivacyNotAuthenticated("log in at /console/login") from exc
        if who.staff.role not in roles:
            raise PrivacyForbidden(f"this is for {', '.join(roles)}")
        if request.method in UNSAFE and not csrf_matches(who, x_csrf_token):
            raise PrivacyForbidden("missing or wrong X-CSRF-Token header")
        return who

    return check


ConsentStaff = Annotated[SessionView, Depends(staff_with_role(*CONSENT_ROLES))]
AdminStaff = Annotated[SessionView, Depends(staff_with_role("admin"))]


# --- consent -------------------------------------------------------------------------------


def _state(session: Session, customer_id: int, version: str) -> dict[str, Any]:
    return consent.marketing_state(session=session, customer_id=customer_id, version=version)


@router.get("/api/chat/consent")
async def shopper_consent(request: Request, customer_id: ShopperId) -> dict[str, Any]:
    """The logged-in shopper's marketing consent."""
    version = _settings(request).consent_version
    state: dict[str, Any] = await in_db(lambda s: _state(s, customer_id, version))
    return state


@router.post("/api/chat/consent")
async def shopper_set_consent(
    request: Request, body: ConsentIn, customer_id: ShopperId
) -> dict[str, Any]:
    """The shopper gives or withdraws marketing consent from the widget."""
    version = _settings(request).consent_version

    def work(s: Session) -> dict[str, Any]:
        consent.set_consent(
            session=s,
            customer_id=customer_id,
            granted=body.marketing,
            source="widget",
            version=version,
        )
        return _state(s, customer_id, version)

    state: dict[str, Any] = await in_db(work)
    return state


@router.get("/api/agent/customers/{external_id}/consent")
async def staff_consent(request: Request, external_id: str, who: ConsentStaff) -> dict[str, Any]:
    """A customer's consent in force and its history."""
    version = _settings(request).consent_version

    def work(s: Session) -> dict[str, Any]:
        customer_id = consent.customer_id_for(session=s, external_id=external_id)
        state = _state(s, customer_id, version)
        state["history"] = [
            v.to_dict() for v in consent.history(session=s, customer_id=customer_id)
        ]
        return state

    state: dict[str, Any] = await in_db(work)
    return state


@router.post("/api/agent/customers/{external_id}/consent")
async def staff_set_consent(
    request: Request, external_id: str, body: ConsentIn, who: ConsentStaff
) -> dict[str, Any]:
    """An agent records the customer's answer (e.g. given on the phone)."""
    version = _settings(request).consent_version

    def work(s: Session) -> dict[str, Any]:
        customer_id = consent.customer_id_for(session=s, external_id=external_id)
        consent.set_consent(
            session=s,
            customer_id=customer_id,
            granted=body.marketing,
            source="agent",
            staff_id=who.staff.id,
            version=version,
        )
        return _state(s, customer_id, version)

    state: dict[str, Any] = await in_db(work)
    return state


# --- export --------------------------------------------------------------------------------


def _export_detail(document: dict[str, Any], via: str) -> dict[str, Any]:
    return {
        "format_version": document["format_version"],
        "orders": len(document["orders"]),
        "conversations": len(document["conversations"]),
        "via": via,
    }


def _attachment(document: dict[str, Any], name: str) -> JSONResponse:
    filename = "customer-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".json"
    return JSONResponse(
        document,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/api/admin/customers/{external_id}/export")
async def admin_export(request: Request, external_id: str, who: AdminStaff) -> JSONResponse:
    """Everything held about the customer, Rasa's tracker events included, as one JSON
    document; audit-logged."""
    trackers = _trackers(request)

    def work(s: Session) -> dict[str, Any]:
        customer_id = consent.customer_id_for(session=s, external_id=external_id)
        document = export_customer(session=s, customer_id=customer_id, trackers=trackers)
        audit.record(
            session=s,
            actor="staff",
            staff_id=who.staff.id,
            action="export",
            customer_id=customer_id,
            detail=_export_detail(document, "admin"),
        )
        return document

    document: dict[str, Any] = await in_db(work)
    return _attachment(document, external_id)


# --- the shopper's own export, through a signed link ---------------------------------------


def _cors_headers(request: Request) -> dict[str, str]:
    """The widget runs on the store's pages: its origins (``KEFU_ALLOWED_ORIGINS``, the
    allowlist of the chat socket) may ask for a link; no other origin may read the answer."""
    origin = request.headers.get("origin")
    if origin and origin in _settings(request).allowed_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


@router.options("/api/chat/export")
async def shopper_export_preflight(request: Request) -> Response:
    headers = _cors_headers(request)
    if "Access-Control-Allow-Origin" in headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "authorization, x-customer-token",
                "Access-Control-Max-Age": "600",
            }
        )
    return Response(status_code=204, headers=headers)


@router.post("/api/chat/export")
async def shopper_export_link(request: Request, customer_id: ShopperId) -> JSONResponse:
    """A short-lived download link for the logged-in shopper's own data."""
    settings = _settings(request)
    token, expires_at = sign_export_link(
        customer_id,
        key=settings.secret_key,
        ttl=timedelta(minutes=settings.export_link_minutes),
    )
    return JSONResponse(
        {"url": f"/api/chat/export/{token}", "expires_at": expires_at.isoformat()},
        headers={**_cors_headers(request), "Cache-Control": "no-store"},
    )


@router.get("/api/chat/export/{token}")
async def shopper_export(request: Request, token: str) -> JSONResponse:
    """The shopper's export document, for a valid link; audit-logged (actor customer)."""
    customer_id = verify_export_link(token, key=_settings(request).secret_key)
    trackers = _trackers(request)

    def work(s: Session) -> dict[str, Any]:
        document = export_customer(session=s, customer_id=customer_id, trackers=trackers)
        audit.record(
            session=s,
            actor="customer",
            action="export",
            customer_id=customer_id,
            detail=_export_detail(document, "link"),
        )
        return document

    try:
        document: dict[str, Any] = await in_db(work)
    except KeyError as exc:
        raise PrivacyNotAuthenticated("this download link is not valid") from exc
    return _attachment(document, document["customer"]["external_id"])


# --- erasure -------------------------------------------------------------------------------


@router.post("/api/admin/customers/{external_id}/erase")
async def admin_erase(request: Request, external_id: str, who: AdminStaff) -> dict[str, Any]:
    """Erase the customer everywhere (``bot.privacy.erasure``): all or nothing, only once
    every conversation of theirs is closed; audit-logged with counts."""
    trackers = _trackers(request)

    def work(s: Session) -> dict[str, Any]:
        customer_id = consent.customer_id_for(session=s, external_id=external_id)
        report = erase_customer(
            session=s,
            customer_id=customer_id,
            trackers=trackers,
            actor="staff",
            staff_id=who.staff.id,
        )
        return report.to_dict()

    result: dict[str, Any] = await in_db(work)
    result.pop("customer_id", None)
    return {"external_id": external_id, **result}


def _error(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KefuError)
        return JSONResponse(error_body(exc), status_code=status)

    return handler


def install(app: FastAPI) -> None:
    app.add_exception_handler(PrivacyNotAuthenticated, _error(401))
    app.add_exception_handler(PrivacyForbidden, _error(403))
    app.add_exception_handler(ConversationsLive, _error(409))
    app.add_exception_handler(TrackerStoreUnavailable, _error(503))
    app.include_router(router)
