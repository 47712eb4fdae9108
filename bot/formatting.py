"""Dates and amounts as a shopper reads them, in the store's time zone and their language."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local(dt: datetime, tz: str) -> datetime:
    return dt.astimezone(ZoneInfo(tz))


def format_date(dt: datetime | None, language: str, tz: str) -> str:
    """``11月20日`` or ``20 Nov``."""
    if dt is None:
        return ""
    d = local(dt, tz)
    return f"{d.day} {_EN_MONTHS[d.month - 1]}" if language == "en" else f"{d.month}月{d.day}日"


def format_datetime(dt: datetime, language: str, tz: str) -> str:
    """``11月20日 14:05`` or ``20 Nov 14:05``."""
    return f"{format_date(dt, language, tz)} {local(dt, tz):%H:%M}"


def format_money(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"
