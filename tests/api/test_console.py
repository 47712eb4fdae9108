from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.db import session_scope
from bot.models import Staff
from bot.services.staff import create_staff

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(app_db: str) -> dict[str, str]:
    """A fresh account per role (unique e-mails, so tests do not share throttling)."""
    tag = uuid.uuid4().hex[:8]
    emails = {}
    with session_scope() as session:
        for role in ("agent", "supervisor", "ops", "admin"):
            email = f"{role}-{tag}@example.com"
            create_staff(
                session=session,
                email=email,
                name=f"{role.title()} {tag}",
                role=role,
                password=PASSWORD,
            )
            emails[role] = email
    return emails


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> int:
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        follow_redirects=False,
        data={"email": email, "password": password, "csrf_token": _csrf(form.text)},
    )
    return response.status_code


def test_log_in_and_out(client: TestClient, accounts: dict[str, str]) -> None:
    page = client.get("/console/login")
    assert "Content-Security-Policy" in page.headers
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert log_in(client, accounts["agent"]) == 303
    home = client.get("/console/")
    assert home.status_code == 200 and "agent" in home.text
    assert "/console/admin/staff" not in home.text  # no admin navigation for an agent
    old_cookie = client.cookies.get("kefu_staff")
    out = client.post(
        "/console/logout", data={"csrf_token": _csrf(home.text)}, follow_redirects=False
    )
    assert out.status_code == 303
    # The server forgot the session: replaying the old cookie does not get in.
    replay = TestClient(client.app, cookies={"kefu_staff": old_cookie or ""})
    assert replay.get("/console/", follow_redirects=False).status_code == 303


def test_wrong_password_and_brute_force_limit(client: TestClient, accounts: dict[str, str]) -> None:
    assert log_in(client, accounts["ops"], "wrong password!") == 401
    for _ in range(4):
        log_in(client, accounts["ops"], "still wrong!!")
    # Five failures: even the right password is refused for a while.
    assert log_in(client, accounts["ops"]) == 429
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_unknown_e_mail_is_refused_the_same_way(client: TestClient) -> None:
    assert log_in(client, "nobody@example.com") == 401


def test_role_restricted_pages(client: TestClient, accounts: dict[str, str]) -> None:
    assert client.get("/console/admin/staff", follow_redirects=False).status_code == 303
    log_in(client, accounts["agent"])
    assert client.get("/console/admin/staff").status_code == 403
    admin = TestClient(client.app)
    log_in(admin, accounts["admin"])
    page = admin.get("/console/admin/staff")
    assert page.status_code == 200 and accounts["agent"] in page.text


def test_forms_need_the_csrf_token(client: TestClient, accounts: dict[str, str]) -> None:
    log_in(client, accounts["admin"])
    forged = client.post(
        "/console/admin/staff",
        data={
            "email": "forged@example.com",
            "name": "Forged",
            "role": "admin",
            "password": PASSWORD,
            "csrf_token": "not-the-token",
        },
    )
    assert forged.status_code == 422
    with session_scope() as session:
        assert session.scalar(select(Staff).where(Staff.email == "forged@example.com")) is None
    fresh = TestClient(client.app)
    no_cookie = fresh.post(
        "/console/login", data={"email": accounts["agent"], "password": PASSWORD, "csrf_token": "x"}
    )
    assert no_cookie.status_code == 400


def test_password_change_ends_every_session(client: TestClient, accounts: dict[str, str]) -> None:
    log_in(client, accounts["supervisor"])
    other_device = TestClient(client.app)
    log_in(other_device, accounts["supervisor"])
    form = client.get("/console/account/password")
    changed = client.post(
        "/console/account/password",
        follow_redirects=False,
        data={"current": PASSWORD, "new": "a brand new passphrase", "csrf_token": _csrf(form.text)},
    )
    assert changed.status_code == 303
    assert other_device.get("/console/", follow_redirects=False).status_code == 303
    assert log_in(client, accounts["supervisor"], "a brand new passphrase") == 303


def test_admin_adds_staff_and_resets_a_password(
    client: TestClient, accounts: dict[str, str]
) -> None:
    log_in(client, accounts["admin"])
    page = client.get("/console/admin/staff")
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    added = client.post(
        "/console/admin/staff",
        follow_redirects=False,
        data={
            "email": email,
            "name": "<script>alert(1)</script>",
            "role": "agent",
            "password": PASSWORD,
            "csrf_token": _csrf(page.text),
        },
    )
    assert added.status_code == 303
    listing = client.get("/console/admin/staff").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    assert "<script>alert(1)</script>" not in listing

    newcomer = TestClient(client.app)
    assert log_in(newcomer, email) == 303
    with session_scope() as session:
        staff_id = session.scalars(select(Staff.id).where(Staff.email == email)).one()
    reset = client.post(
        f"/console/admin/staff/{staff_id}/password",
        follow_redirects=False,
        data={"password": "reset by the admin", "csrf_token": _csrf(listing)},
    )
    assert reset.status_code == 303
    assert newcomer.get("/console/", follow_redirects=False).status_code == 303
    assert log_in(newcomer, email, "reset by the admin") == 303


def test_static_assets_are_cached_and_vendored(client: TestClient) -> None:
    htmx = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert htmx.status_code == 200 and "immutable" in htmx.headers["cache-control"]
