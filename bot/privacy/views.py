"""What each role sees of free text: raw where the role needs the personal data to do its
job, masked (``bot.privacy.masking``) everywhere else.

- ``agent`` and ``supervisor`` handle live conversations: a call-back number or a new
  delivery address is their work, so they see the text as written.
- ``ops`` (transcript review, corrections), ``admin`` (staff and settings, not
  transcripts), ``export`` (segment and analytics files), ``log`` (process logs) and any
  role not listed see masked text — an unknown role is masked, never shown raw.

A customer's own data export is not a role view: it is the subject's data, given whole
(``bot.privacy.export``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.privacy.masking import KnownIds, mask

RAW_ROLES = frozenset({"agent", "supervisor"})
MASKED_ROLES = frozenset({"ops", "admin", "export", "log"})


def sees_raw(role: str) -> bool:
    """Whether ``role`` needs personal data in text as written."""
    return role in RAW_ROLES


def for_role(
    role: str, text: str, *, known_ids: KnownIds | None = None, lang: str | None = None
) -> str:
    """``text`` as ``role`` may see it. Pass ``known_ids`` (e.g. a ``StoreIdLookup``) so the
    store's order and tracking numbers stay readable in masked text."""
    if sees_raw(role):
        return text
    return mask(text, known_ids=known_ids, lang=lang)


def records_for_role(
    role: str,
    records: Iterable[Mapping[str, Any]],
    *,
    fields: tuple[str, ...] = ("text",),
    known_ids: KnownIds | None = None,
) -> list[dict[str, Any]]:
    """Copies of ``records`` (e.g. transcript messages, export rows) with the free-text
    ``fields`` as ``role`` may see them; other fields are left as they are."""
    out: list[dict[str, Any]] = []
    for record in records:
        copy = dict(record)
        for name in fields:
            value = copy.get(name)
            if isinstance(value, str):
                copy[name] = for_role(role, value, known_ids=known_ids)
        out.append(copy)
    return out
