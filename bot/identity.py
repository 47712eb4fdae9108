"""Signed tokens: the gateway's visitor token and the store's customer (login) token.

The visitor token is ours: it names an anonymous browser and is kept in the widget's
localStorage. The customer token is issued by the store's backend for a logged-in shopper
with a secret shared with Kefu (``KEFU_STORE_TOKEN_SECRET``)::

    body = f"{customer_id}.{expires_unix}"
    token = body + "." + hmac_sha256_hex(secret, body)

Both are compared with ``hmac.compare_digest``. Only a verified customer token links a
visitor to a customer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock, utcnow
from bot.errors import InvalidToken

_VISITOR_PREFIX = "v1"


def _mac(key: str, message: str) -> bytes:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()


def new_visitor_id() -> str:
    return secrets.token_hex(16)


def sign_visitor(visitor_id: str, *, key: str, clock: Clock = utcnow) -> str:
    """A visitor token for ``visitor_id``."""
    issued = int(clock().timestamp())
    body = f"{_VISITOR_PREFIX}.{visitor_id}.{issued}"
    sig = base64.urlsafe_b64encode(_mac(key, body)).rstrip(b"=").decode()
    return f"{body}.{sig}"


def verify_visitor(token: str, *, key: str, max_age: timedelta, clock: Clock = utcnow) -> str:
    """The visitor id in a valid, unexpired token; ``InvalidToken`` otherwise."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 4 or parts[0] != _VISITOR_PREFIX or len(token) > 200:
        raise InvalidToken("malformed visitor token")
    _, visitor_id, issued, sig = parts
    expected = base64.urlsafe_b64encode(_mac(key, ".".join(parts[:3]))).rstrip(b"=").decode()
    if not hmac.compare_digest(sig, expected):
        raise InvalidToken("bad visitor token signature")
    if not issued.isdigit() or clock().timestamp() - int(issued) > max_age.total_seconds():
        raise InvalidToken("visitor token expired")
    return visitor_id


@dataclass(frozen=True)
class CustomerClaim:
    external_id: str
    expires_at: int


def issue_customer_token(
    external_id: str, *, key: str, ttl: timedelta = timedelta(hours=12), clock: Clock = utcnow
) -> str:
    """What a store backend does for a logged-in shopper (used by the demo store and tests)."""
    if "." in external_id or not external_id:
        raise ValueError("customer external id must be non-empty and contain no '.'")
    expires = int((clock() + ttl).timestamp())
    body = f"{external_id}.{expires}"
    return f"{body}.{_mac(key, body).hex()}"


def verify_customer_token(token: str, *, key: str, clock: Clock = utcnow) -> CustomerClaim:
    """The claim of a valid, unexpired store token; ``InvalidToken`` otherwise."""
    parts = token.rsplit(".", 2) if isinstance(token, str) and len(token) <= 300 else []
    if len(parts) != 3 or not parts[1].isdigit():
        raise InvalidToken("malformed customer token")
    external_id, expires, sig = parts
    if not hmac.compare_digest(sig, _mac(key, f"{external_id}.{expires}").hex()):
        raise InvalidToken("bad customer token signature")
    if int(expires) < clock().timestamp():
        raise InvalidToken("customer token expired")
    return CustomerClaim(external_id=external_id, expires_at=int(expires))
