"""The console shell: staff log-in, the layout every console page sits in, and staff admin.

Server-rendered (Jinja); sessions are server-side (bot.services.staff); every form carries a
CSRF token — the session's own, or on the log-in form a double-submit cookie — and every
console response carries a Content-Security-Policy (api.main).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.db import in_db
from bot.errors import InvalidInput, KefuError
from bot.models.staff import ROLES
from bot.services import staff as staff_service
from bot.services.staff import LoginThrottled, SessionView

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))

SESSION_COOKIE = "kefu_staff"
LOGIN_CSRF_COOKIE = "kefu_login_csrf"

# Navigation per role; later consoles (agent, ops review, analytics) add their entries here.
NAVIGATION: list[tuple[str, str, tuple[str, ...]]] = [
    ("/console/", "Home", ROLES),
    ("/console/agent", "Inbox", ("agent", "supervisor")),
    ("/console/supervisor", "Supervise", ("supervisor",)),
    ("/console/review", "Review", ("ops", "admin")),
    ("/console/analytics", "Analytics", ("ops", "supervisor", "admin")),
    ("/console/models", "Models", ("ops", "admin")),
    ("/console/admin/staff", "Staff", ("admin",)),
    ("/console/segments", "Segments", ("ops", "admin")),
    ("/console/account/password", "Password", ROLES),
]


class LoginRequired(Exception):
    """No live staff session: the exception handler redirects to the log-in page."""


class Forbidden(Exception):
    """Logged in, but this page is not for the role."""


async def current_staff(request: Request) -> SessionView:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired
    found: SessionView | None = await in_db(
        lambda s: staff_service.session_for(session=s, token=token)
    )
    if found is None:
        raise LoginRequired
    return found


CurrentStaff = Annotated[SessionView, Depends(current_staff)]


def require_role(*roles: str) -> Callable[[SessionView], SessionView]:
    def check(who: CurrentStaff) -> SessionView:
        if who.staff.role not in roles:
            raise Forbidden
        return who

    return check


AdminStaff = Annotated[SessionView, Depends(require_role("admin"))]


def csrf_matches(who: SessionView, token: str | None) -> bool:
    """Whether ``token`` is the staff session's CSRF token (compared in constant time)."""
    return hmac.compare_digest(who.csrf_token, token or "")


def check_csrf(who: SessionView, token: str) -> None:
    """Refuse a console form that does not carry the session's CSRF token."""
    if not csrf_matches(who, token):
        raise InvalidInput("the form expired; reload the page and try again")


def render(
    request: Request, template: str, who: SessionView | None, status: int = 200, **context: Any
) -> HTMLResponse:
    nav = [
        (href, label)
        for href, label, roles in NAVIGATION
        if who is not None and who.staff.role in roles
    ]
    return templates.TemplateResponse(
        request,
        template,
        {"who": who, "nav": nav, "roles": ROLES, **context},
        status_code=status,
    )


def _login_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = render(
        request,
        "console/login.html",
        None,
        status=status,
        csrf=csrf,
        error=error,
        next=request.query_params.get("next", "/console/"),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console/login",
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=200)] = "/console/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        return _login_page(request, error="The form expired; please try again.", status=400)
    ip = request.client.host if request.client else "unknown"
    try:
        result = await in_db(
            lambda s: staff_service.log_in(session=s, email=email, password=password, ip=ip)
        )
    except LoginThrottled:
        return _login_page(
            request, error="Too many failed log-ins. Try again in 15 minutes.", status=429
        )
    if result is None:
        return _login_page(request, error="Wrong e-mail or password.", status=401)
    token, _ = result
    target = next if next.startswith("/console/") and "//" not in next else "/console/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
        max_age=int(staff_service.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout")
async def logout(
    request: Request, who: CurrentStaff, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    check_csrf(who, csrf_token)
    token = request.cookies.get(SESSION_COOKIE, "")
    await in_db(lambda s: staff_service.log_out(session=s, token=token))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(request: Request, who: CurrentStaff) -> Response:
    return render(request, "console/home.html", who)


@router.get("/account/password")
async def password_form(request: Request, who: CurrentStaff) -> Response:
    return render(request, "console/password.html", who)


@router.post("/account/password")
async def change_password(
    request: Request,
    who: CurrentStaff,
    current: Annotated[str, Form(max_length=200)],
    new: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    try:
        await in_db(
            lambda s: staff_service.change_password(
                session=s, staff_id=who.staff.id, current=current, new=new
            )
        )
    except KefuError as exc:
        return render(request, "console/password.html", who, status=400, error=str(exc))
    # Every session of the account has ended, this one too: log in again.
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/admin/staff")
async def staff_page(request: Request, who: AdminStaff) -> Response:
    people = await in_db(lambda s: staff_service.list_staff(session=s))
    return render(request, "console/staff.html", who, people=people)


@router.post("/admin/staff")
async def add_staff(
    request: Request,
    who: AdminStaff,
    email: Annotated[str, Form(max_length=200)],
    name: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    try:
        await in_db(
            lambda s: staff_service.create_staff(
                session=s, email=email, name=name, role=role, password=password
            )
        )
    except KefuError as exc:
        people = await in_db(lambda s: staff_service.list_staff(session=s))
        return render(request, "console/staff.html", who, status=400, people=people, error=str(exc))
    return RedirectResponse("/console/admin/staff", status_code=303)


@router.post("/admin/staff/{staff_id}/password")
async def reset_password(
    request: Request,
    who: AdminStaff,
    staff_id: int,
    password: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(who, csrf_token)
    try:
        await in_db(
            lambda s: staff_service.reset_password(session=s, staff_id=staff_id, new=password)
        )
    except KefuError as exc:
        people = await in_db(lambda s: staff_service.list_staff(session=s))
        return render(request, "console/staff.html", who, status=400, people=people, error=str(exc))
    return RedirectResponse("/console/admin/staff", status_code=303)


async def _login_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"/console/login?next={request.url.path}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    who = await current_staff(request)
    return render(request, "console/forbidden.html", who, status=403)


def install(app: Any) -> None:
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)
    app.include_router(router)
