"""Staff accounts: argon2 passwords, server-side sessions, and a brute-force limit.

A session is a random token kept in the browser's cookie; only its SHA-256 is stored, so a
database leak does not hand out sessions. Logging out ends that session; changing or
resetting a password ends every session of that account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.errors import InvalidInput, KefuError, NotFound
from bot.models import LoginFailure, Staff, StaffSession
from bot.models.staff import ROLES

SESSION_LIFETIME = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 20
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verifying against this when the e-mail is unknown keeps the timing the same.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class InvalidCredentials(KefuError):
    code = "invalid_credentials"


class LoginThrottled(KefuError):
    code = "too_many_attempts"


@dataclass(frozen=True)
class StaffView:
    id: int
    email: str
    name: str
    role: str
    active: bool


@dataclass(frozen=True)
class SessionView:
    staff: StaffView
    csrf_token: str


def _view(staff: Staff) -> StaffView:
    return StaffView(staff.id, staff.email, staff.name, staff.role, staff.active)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"passwords have at least {MIN_PASSWORD_LENGTH} characters")


def create_staff(
    *, session: Session, email: str, name: str, role: str, password: str, clock: Clock = utcnow
) -> StaffView:
    """Add a staff account; e-mails are unique and case-insensitive."""
    email = email.strip().lower()
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if "@" not in email or not name.strip():
        raise InvalidInput("an e-mail address and a name are required")
    _check_password(password)
    if session.scalar(select(Staff.id).where(Staff.email == email)) is not None:
        raise InvalidInput("a staff account with that e-mail exists")
    now = clock()
    staff = Staff(
        email=email,
        name=name.strip(),
        role=role,
        password_hash=_hasher.hash(password),
        created_at=now,
        password_changed_at=now,
    )
    session.add(staff)
    session.flush()
    return _view(staff)


def list_staff(*, session: Session) -> list[StaffView]:
    return [_view(s) for s in session.scalars(select(Staff).order_by(Staff.role, Staff.email))]


def log_in(
    *, session: Session, email: str, password: str, ip: str, clock: Clock = utcnow
) -> tuple[str, SessionView] | None:
    """Check the password and open a session; returns (cookie token, session), or None for
    wrong credentials — the failure is recorded, so the caller commits rather than raises.

    More than a few failures for one e-mail, or many from one address, in the window
    refuses further attempts (``LoginThrottled``, even for the right password) until the
    window passes.
    """
    email = email.strip().lower()
    now = clock()
    since = now - FAILURE_WINDOW
    by_email = (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.email == email, LoginFailure.at >= since)
        )
        or 0
    )
    by_ip = (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.ip == ip, LoginFailure.at >= since)
        )
        or 0
    )
    if by_email >= MAX_FAILURES_PER_EMAIL or by_ip >= MAX_FAILURES_PER_IP:
        raise LoginThrottled("too many failed log-ins; try again in 15 minutes")

    staff = session.scalars(select(Staff).where(Staff.email == email)).first()
    try:
        _hasher.verify(staff.password_hash if staff else _DUMMY_HASH, password)
        ok = staff is not None and staff.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or staff is None:
        session.add(LoginFailure(email=email, ip=ip, at=now))
        return None

    token = secrets.token_urlsafe(32)
    record = StaffSession(
        token_hash=_token_hash(token),
        staff_id=staff.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(record)
    return token, SessionView(_view(staff), record.csrf_token)


def session_for(*, session: Session, token: str, clock: Clock = utcnow) -> SessionView | None:
    """The live session of a cookie token, or None (ended, expired, account disabled)."""
    row = session.execute(
        select(StaffSession, Staff)
        .join(Staff, Staff.id == StaffSession.staff_id)
        .where(StaffSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    record, staff = row
    if record.ended_at is not None or record.expires_at <= clock() or not staff.active:
        return None
    return SessionView(_view(staff), record.csrf_token)


def log_out(*, session: Session, token: str, clock: Clock = utcnow) -> None:
    session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == _token_hash(token), StaffSession.ended_at.is_(None))
        .values(ended_at=clock())
    )


def _set_password(session: Session, staff: Staff, password: str, now: object) -> None:
    staff.password_hash = _hasher.hash(password)
    staff.password_changed_at = now  # type: ignore[assignment]
    session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def change_password(
    *, session: Session, staff_id: int, current: str, new: str, clock: Clock = utcnow
) -> None:
    """Change one's own password; every session of the account ends."""
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("staff")
    try:
        _hasher.verify(staff.password_hash, current)
    except (VerificationError, InvalidHashError) as exc:
        raise InvalidCredentials("the current password is wrong") from exc
    _check_password(new)
    _set_password(session, staff, new, clock())


def reset_password(*, session: Session, staff_id: int, new: str, clock: Clock = utcnow) -> None:
    """An admin sets a new password; every session of that account ends."""
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("staff")
    _check_password(new)
    _set_password(session, staff, new, clock())
