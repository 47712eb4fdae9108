"""Privacy API: marketing consent from the widget and from agents, and the admin's customer
data export.

Shopper (``Authorization: Bearer <visitor token>`` of a visitor whose store login was
verified, i.e. who opened the chat with a customer token):

- ``GET  /api/chat/consent`` → ``{"marketing": bool, "consent": {...} | null,
  "current_version", "needs_renewal"}``
- ``POST /api/chat/consent`` ``{"marketing": bool}`` → the same, after recording the answer
  (source ``widget``). A withdrawal takes effect for every later query at once.

Staff (the console's session cookie ``kefu_staff``; unsafe methods need the session's CSRF
token in ``X-CSRF-Token``, as the agent API; ``GET /api/agent/me`` returns it):

- ``GET  /api/agent/customers/{external_id}/consent`` (agent, supervisor, admin) →
  ``{"marketing", "consent", "history": [...], "current_version", "needs_renewal"}``
- ``POST /api/agent/customers/{external_id}/consent`` ``{"marketing": bool}`` (agent,
  supervisor, admin): recorded with source ``agent``, audit-logged with the staff id.
- ``GET  /api/admin/customers/{external_id}/export`` (admin) → the export document
  (``bot.privacy.export``), audit-logged as ``export``.

Errors are ``{"error": {"code", "message"}}``: 401 not logged in / no logged-in shopper,
403 wrong role or CSRF token, 404 unknown customer, 422.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import error_body
from api.routes.console import LoginRequired, current_staff
from bot.db import run_with_retry
from bot.errors import KefuError
from bot.identity import verify_visitor
from bot.models import Visitor
from bot.privacy.export import export_customer
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


async def _db(work: Callable[[Session], Any]) -> Any:
    return await to_thread.run_sync(lambda: run_with_retry(work))


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# --- who is asking -------------------------------------------------------------------------


async def shopper_customer_id(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> int:
    """The customer behind the caller's visitor token; only a visitor linked to a customer
    by a verified store login may read or change consent."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise PrivacyNotAuthenticated("visitor token required (Authorization: Bearer …)")
    settings = _settings(request)
    visitor_id = verify_visitor(
        authorization[7:].strip(),
        key=settings.secret_key,
        max_age=timedelta(days=settings.visitor_token_max_age_days),
    )
    customer_id: int | None = await _db(
        lambda s: s.scalar(select(Visitor.customer_id).where(Visitor.id == visitor_id))
    )
    if customer_id is None:
        raise PrivacyNotAuthenticated("log in to the store to manage your consent")
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
        if request.method in UNSAFE and not hmac.compare_digest(who.csrf_token, x_csrf_token or ""):
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
    state: dict[str, Any] = await _db(lambda s: _state(s, customer_id, version))
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

    state: dict[str, Any] = await _db(work)
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

    state: dict[str, Any] = await _db(work)
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

    state: dict[str, Any] = await _db(work)
    return state


# --- export --------------------------------------------------------------------------------


@router.get("/api/admin/customers/{external_id}/export")
async def admin_export(external_id: str, who: AdminStaff) -> JSONResponse:
    """Everything held about the customer, as one JSON document; audit-logged."""

    def work(s: Session) -> dict[str, Any]:
        customer_id = consent.customer_id_for(session=s, external_id=external_id)
        document = export_customer(session=s, customer_id=customer_id)
        audit.record(
            session=s,
            actor="staff",
            staff_id=who.staff.id,
            action="export",
            customer_id=customer_id,
            detail={
                "format_version": document["format_version"],
                "orders": len(document["orders"]),
                "conversations": len(document["conversations"]),
            },
        )
        return document

    document: dict[str, Any] = await _db(work)
    filename = "customer-" + re.sub(r"[^A-Za-z0-9_.-]", "_", external_id) + ".json"
    return JSONResponse(
        document,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _error(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KefuError)
        return JSONResponse(error_body(exc), status_code=status)

    return handler


def install(app: FastAPI) -> None:
    app.add_exception_handler(PrivacyNotAuthenticated, _error(401))
    app.add_exception_handler(PrivacyForbidden, _error(403))
    app.include_router(router)
