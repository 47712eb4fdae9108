"""Customer 360 for the agent console: ``GET /api/agent/customers/{external_id}``.

Authenticated like the agent API (the staff session cookie, errors 401/403 from
``api.routes.agent``); agents, supervisors and admins may read it, and ops too — it changes
nothing. The profile is computed by ``bot.services.profile``; 404 for an unknown customer.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder

from api.db import in_db
from api.routes.agent import AGENT_ROLES, Forbidden, NotAuthenticated
from api.routes.console import LoginRequired, current_staff
from bot.services.profile import customer_360
from bot.services.staff import SessionView

router = APIRouter(prefix="/api/agent/customers", tags=["customers"])

READ_ROLES = (*AGENT_ROLES, "ops")


async def current_reader(request: Request) -> SessionView:
    """The logged-in staff member, if their role may read customer profiles."""
    try:
        who = await current_staff(request)
    except LoginRequired as exc:
        raise NotAuthenticated("log in at /console/login") from exc
    if who.staff.role not in READ_ROLES:
        raise Forbidden("customer profiles are for agents, supervisors, ops and admins")
    return who


Reader = Annotated[SessionView, Depends(current_reader)]


@router.get("/{external_id}")
async def customer_profile(external_id: str, who: Reader) -> dict[str, Any]:
    """The customer's profile: identity, contact history, open issues, satisfaction,
    sentiment, value, RFM, tags, the latest orders and conversations, and the timeline."""
    profile = await in_db(lambda s: customer_360(session=s, external_id=external_id))
    body: dict[str, Any] = jsonable_encoder(asdict(profile))
    return body
