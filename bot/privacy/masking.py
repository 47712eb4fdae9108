"""Find and mask personal data in free text (Chinese and English, half- and full-width).

Kinds found (``Span.kind``):

- ``phone``: mainland mobile numbers, 11 digits starting 13–19, with or without spaces or
  dashes between any digits, with a ``+86`` / ``0086`` / ``86`` prefix, in half-width,
  full-width or mixed digits, or spelt with Chinese digits (一三八…, 幺 for 1); also with
  the trunk prefix 0 (013812345678).
- ``landline``: area code (010, 02x, 0xxx) + a 7–8 digit local number, e.g.
  ``010-12345678``, ``(0755) 8888 9999``, ``+86 21 5555 6666``.
- ``id_card``: 18-character PRC resident ID numbers whose ISO 7064 MOD 11-2 check character
  is right and whose birth date is a possible date. Numbers that fail are not ID numbers.
- ``bank_card``: 16–19 digits passing the Luhn check, grouped or not.
- ``email``: ``local@domain.tld`` (also ``(at)`` / ``[at]`` spellings and a full-width ＠).
- ``address``: Chinese addresses built from 省/市/区/县/镇/街道/路/街/巷/号/弄/小区/栋/幢/单元/
  室/楼 parts (at least one street-level part and something it belongs to), and English ones
  (house number + street name + street type, optional room/building before and district/city
  after).

Numbers are found as *runs* of digits joined by single spaces or dashes; a run is split only
where the writer put a separator, so a 12-digit order number never hides an 11-digit "phone".
Every numeric span is then checked against the store: ``known_ids`` receives the candidate
strings (the digits, and the letters+digits token around them, upper-cased) and returns those
that are the store's order or tracking numbers; those spans are left readable. The check is
by look-up, never by shape (``masker_for_session`` wires in the database, with a cache).

Masks keep text readable for agents and reviewers:

====================  =====================================  ===========================
kind                  zh text                                en text
====================  =====================================  ===========================
phone                 ``138****5678``                        same
landline              ``010-****5678``                       same
id_card               ``[身份证]``                            ``[ID number]``
bank_card             ``[银行卡 尾号1234]``                    ``[card ending 1234]``
email                 ``z***@example.com``                   same
address               ``[地址]``                              ``[address]``
====================  =====================================  ===========================

The language of the labels follows the text (any CJK character → zh) unless ``lang`` says.
Everything is precompiled; the slow patterns run only when a cheap trigger is present.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from bot.models.store import Order, Shipment

KnownIds = Callable[[set[str]], set[str]]

KINDS = ("phone", "landline", "id_card", "bank_card", "email", "address")
# When two findings overlap, the more specific one wins (an e-mail such as
# 13812345678@163.com is one e-mail, not a phone number).
_PRIORITY = {"email": 0, "id_card": 1, "bank_card": 2, "phone": 3, "landline": 4, "address": 5}
_NUMERIC = frozenset({"phone", "landline", "id_card", "bank_card"})


class Span(NamedTuple):
    """Personal data of ``kind`` at ``text[start:end]``."""

    kind: str
    start: int
    end: int


# --- normalisation: a same-length copy of the text with full-width forms folded -------------

_FOLD: dict[int, int] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FOLD.update({0x3000: 0x20, 0x00A0: 0x20, 0x2007: 0x20, 0x202F: 0x20, 0x09: 0x20})
_FOLD.update({c: 0x2D for c in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE63)})
_FOLD[0xFE6B] = 0x40  # small commercial at


def fold(text: str) -> str:
    """Full-width ASCII → half-width, odd spaces and dashes → ASCII; same length as ``text``,
    so offsets found in the result are offsets in ``text``."""
    return text.translate(_FOLD)


# --- numbers ---------------------------------------------------------------------------------

# Digits joined by single spaces, dashes or one line break (a card number wrapped in chat).
_RUN = re.compile(r"(?<![0-9])[0-9](?:(?: ?- ?| {1,2}| ?\r?\n ?)?[0-9])*(?:[Xx](?![A-Za-z0-9]))?")
_GROUP = re.compile(r"[0-9]+[Xx]?")
_PAREN_LANDLINE = re.compile(
    r"\((0[1-9][0-9]{1,2})\) ?([2-9][0-9]{2,3}(?: ?-? ?[0-9]{4}))(?![0-9])"
)
_CN_DIGITS = "〇零一二三四五六七八九幺"
_CN_RUN = re.compile(rf"[{_CN_DIGITS}]{{11,19}}(?:[Xx])?")
_CN_MAP = str.maketrans(
    {**{c: str(i) for i, c in enumerate("零一二三四五六七八九")}, "〇": "0", "幺": "1"}
)
_ALNUM_LEFT = re.compile(r"[A-Za-z0-9]*$")
_ALNUM_RIGHT = re.compile(r"^[A-Za-z0-9]*")
_ANY_DIGIT = re.compile(r"[0-9]")
_MAX_DIGITS = 19 + 4  # the longest thing a run can be (a card, "0086" + landline …)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _id_shaped(value: str) -> bool:
    """18 characters with a region and a possible birth date where an ID number has them."""
    if len(value) != 18 or not value[:17].isdigit() or value[0] == "0":
        return False
    if value[17].upper() not in _ID_CHECK:
        return False
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    return 1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= _DAYS[month - 1]


def valid_resident_id(value: str) -> bool:
    """An 18-character PRC resident ID number: region, possible birth date, and the ISO 7064
    MOD 11-2 check character."""
    if not _id_shaped(value):
        return False
    check = value[17].upper()
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == check


def luhn(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mobile(s: str) -> bool:
    return len(s) == 11 and s[0] == "1" and s[1] in "3456789"


def _landline(s: str) -> bool:
    """Area code (010, 02x or 0xxx) + a local number of 7–8 digits."""
    if len(s) < 10 or s[0] != "0":
        return False
    if s[1:3] == "10" or s[1] == "2":
        area = 3
    elif s[1] in "3456789":
        area = 4
    else:
        return False
    local = s[area:]
    # Real local numbers start 2–9; 1 is let through because people write 010-12345678.
    return 7 <= len(local) <= 8 and local[0] != "0"


def classify_number(s: str, *, plus: bool = False) -> str | None:
    """What a string of digits (an ID may end in X) is, if it is personal data."""
    n = len(s)
    if s[-1] in "Xx":
        return "id_card" if valid_resident_id(s) else None
    if _mobile(s) or (n == 13 and s[:2] == "86" and _mobile(s[2:])):
        return "phone"
    if (n == 15 and s[:4] == "0086" and _mobile(s[4:])) or (
        n == 12 and s[0] == "0" and _mobile(s[1:])
    ):
        return "phone"
    if n == 18 and _id_shaped(s):
        # A mistyped ID number is no card, even when it happens to pass Luhn (1 in 10 do).
        return "id_card" if valid_resident_id(s) else None
    if 16 <= n <= 19 and s[0] != "0" and luhn(s):
        return "bank_card"
    if _landline(s) or (s[:4] == "0086" and _landline("0" + s[4:])):
        return "landline"
    if plus and s[:2] == "86" and s[2] != "0" and _landline("0" + s[2:]):
        return "landline"
    return None


class _Found(NamedTuple):
    kind: str
    start: int
    end: int
    digits: str


def _numbers(folded: str) -> list[_Found]:
    found: list[_Found] = []
    for run in _RUN.finditer(folded):
        groups = [(g.start(), g.end(), g.group()) for g in _GROUP.finditer(run.group())]
        base = run.start()
        i, n = 0, len(groups)
        while i < n:
            for j in range(n, i, -1):
                digits = "".join(g[2] for g in groups[i:j])
                wrapped = j - i > 1 and "\n" in run.group()[groups[i][0] : groups[j - 1][1]]
                # Only a card is long enough to be wrapped over a line.
                if wrapped and classify_number(digits) != "bank_card":
                    continue
                if len(digits) > _MAX_DIGITS or len(digits) < 10:
                    continue
                if "X" in digits[:-1] or "x" in digits[:-1]:
                    continue
                start = base + groups[i][0]
                plus = start > 0 and folded[start - 1] == "+"
                kind = classify_number(digits, plus=plus)
                if kind:
                    if plus and digits[:2] == "86":
                        start -= 1
                    found.append(_Found(kind, start, base + groups[j - 1][1], digits.upper()))
                    i = j
                    break
            else:
                i += 1
    for m in _PAREN_LANDLINE.finditer(folded):
        digits = m.group(1) + re.sub(r"[ -]", "", m.group(2))
        if _landline(digits):
            found.append(_Found("landline", m.start(), m.end(), digits))
    for m in _CN_RUN.finditer(folded):
        digits = m.group().translate(_CN_MAP).upper()
        kind = classify_number(digits)
        if kind:
            found.append(_Found(kind, m.start(), m.end(), digits))
    return found


# --- e-mail ----------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9_](?:[A-Za-z0-9._%+\-]{0,63})"
    r"(?:@| @ | ?[\(\[\{] ?at ?[\)\]\}] ?)"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
    r"(?:(?:\.| ?[\(\[\{] ?dot ?[\)\]\}] ?)[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*"
    r"(?:\.| ?[\(\[\{] ?dot ?[\)\]\}] ?)[A-Za-z]{2,24}(?![A-Za-z0-9\-])",
    re.IGNORECASE,
)
_EMAIL_TRIGGER = re.compile(r"@|[\(\[\{] ?at ?[\)\]\}]", re.IGNORECASE)


# --- addresses -------------------------------------------------------------------------------

# Characters that do not begin or continue a Chinese place name: pronouns, verbs of sending
# and living, particles. Without them "请寄到上海市…" would mask "请寄到" too.
_STOP = "我你您他她它们在是到的了住寄送往给请帮要想址收从去这那个吗呢吧啊哦呀嘛就也还把被让说问找能会已经没很太更最地点为改换"


def _cjk_class(exclude: str) -> str:
    skip = sorted({ord(c) for c in exclude if 0x4E00 <= ord(c) <= 0x9FFF})
    ranges, lo = [], 0x4E00
    for cp in skip:
        if cp > lo:
            ranges.append((lo, cp - 1))
        lo = cp + 1
    ranges.append((lo, 0x9FFF))
    body = "".join(f"\\u{a:04x}-\\u{b:04x}" if a != b else f"\\u{a:04x}" for a, b in ranges)
    return f"[{body}]"


_NAME = _cjk_class(_STOP)
_NUMCH = "[0-9一二三四五六七八九十百千零〇两]"
_GAP = r"[ ,，、]?"
_ZH_PARTS = {
    "prov": rf"{_NAME}{{2,7}}?(?:省|自治区|特别行政区)",
    "city": rf"{_NAME}{{2,6}}?(?:市|自治州|州|盟|地区)",
    "dist": rf"{_NAME}{{1,6}}?(?:新区|区|县|旗)",
    "town": rf"{_NAME}{{1,6}}?(?:街道|镇|乡)",
    "road": rf"(?:{_NAME}{{1,8}}?|{_NUMCH}+)(?:大道|大街|路|街|巷|胡同|道(?={_NUMCH}))(?:[东西南北中]段|{_NUMCH}+段)?",
    "num": rf"{_NUMCH}+(?:-[0-9]+)? ?(?:号院|号(?![楼房])|弄|支弄)",
    "est": rf"{_NAME}{{1,10}}?(?:小区|花园|公寓|大厦|广场|家园|新村|苑|园|村|公馆|大楼|写字楼|商务楼|社区)",
    "bld": r"(?:[0-9A-Za-z]+|[一二三四五六七八九十百]+) ?(?:号楼|栋|幢|座|单元|层|楼|室|号房|户|期|组|社)"
    r"|[0-9]{1,3}[Ff](?![A-Za-z])"
    r"|[0-9]+-[0-9]+(?:-[0-9]+)?(?:室|号)?",
}
_ZH_ADDRESS = re.compile(
    # Cheap first: no address starts where no unit character follows within a name's length.
    "(?=[^ ,，。！？、.!?;；:：\n]{{0,14}}?[省市区县旗镇乡路街巷道号弄院苑园村厦楼栋幢座室元层户期组社Ff])"
    "(?:(?P<prov>{prov}){gap})?(?:(?P<city>{city}){gap})?(?:(?P<dist>{dist}){gap})?"
    "(?:(?P<town>{town}){gap})?(?:(?P<road>{road}){gap})?(?:(?P<num>(?:{num}){gap}){{1,2}})?"
    "(?:(?P<est>{est}){gap})?(?P<bld>(?:(?:{bld}){gap}){{0,4}})"
    # A bare room number after the building: …B座2201, …3栋502
    "(?:(?<=[栋幢座元层楼号弄])[0-9]{{1,5}}(?![0-9]))?".format(gap=_GAP, **_ZH_PARTS)
)
_ZH_TRIGGER = re.compile(r"[省市区县旗镇乡路街巷号弄苑园村厦楼栋幢座室单元]")
_STREET_LEVEL = ("road", "num", "est", "bld")
_ANCHOR = ("prov", "city", "dist", "town", "road", "est")

_EN_UNIT = (
    r"(?:(?i:room|rm|apt|apartment|flat|unit|suite|ste|building|bldg|block|blk|floor|fl|"
    r"tower|lane|no)\.?\s*#?\s*[0-9]+[A-Za-z]?(?:-[0-9A-Za-z]+)?|(?i:no)\.?\s*[0-9]+)"
)
_EN_STOPWORDS = (
    "the|a|an|on|in|to|of|my|your|our|for|and|or|is|are|was|at|by|from|with|it|this|that|"
    "be|i|we|you|he|she|they|items?|pcs|pieces|days?|hours?|times?|more|than|via|per"
)
_EN_WORD = rf"(?!(?i:{_EN_STOPWORDS})\b)(?:[A-Za-z][A-Za-z'\-]*\.?|[0-9]+(?i:st|nd|rd|th))"
_EN_TYPE = (
    r"(?:(?i:street|st|road|rd|avenue|ave|boulevard|blvd|highway|hwy|parkway|pkwy|terrace|"
    r"crescent|alley|expressway|lu|jie|dajie|dadao|hutong|xiang|nong)"
    r"|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Square|Sq|Close|Row|Grove|Gardens|Mews|Circle|"
    r"Cir|Trail|Heights|Walk|Rise|Hill)\b\.?"
)
_EN_CAP = r"[A-Z][A-Za-z'\-]*(?![A-Za-z0-9])"
_EN_POSTCODE = (
    r"(?:[0-9]{4,6}(?:-[0-9]{4})?|[0-9]{3}-[0-9]{4}|[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}"
    r"|[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9])(?![A-Za-z0-9])"
)
_ENGLISH_ADDRESS = re.compile(
    rf"(?P<units>(?:\b{_EN_UNIT},?\s+){{0,3}})"
    rf"(?P<house>\b[0-9]{{1,5}}[A-Za-z]?(?:-[0-9]{{1,4}})?,?\s+)?"
    rf"(?P<street>\b{_EN_WORD}(?:\s+{_EN_WORD}){{0,3}}\s+{_EN_TYPE}"
    r"(?:\s+(?:North|South|East|West|N|S|E|W|NE|NW|SE|SW)\b\.?)?)"
    rf"(?P<tail>(?:,?\s+{_EN_UNIT})?(?:,\s*{_EN_CAP}(?:\s+{_EN_CAP}){{0,3}}){{0,3}}"
    rf"(?:,?\s+{_EN_POSTCODE})?)"
)
_EN_TRIGGER = re.compile(
    r"\b(?i:street|st|road|rd|avenue|ave|boulevard|blvd|highway|hwy|parkway|pkwy|terrace|"
    r"crescent|alley|expressway|lu|jie|dajie|dadao|hutong|xiang|nong|lane|ln|drive|dr|way|"
    r"court|ct|place|pl|square|sq|close|row|grove|gardens|mews|circle|cir|trail|heights|walk|"
    r"rise|hill)\b"
)


_UNIT_WORDS = re.compile(r"号楼|栋|幢|座|单元|层|楼|室|号房|户|期|组|社|[0-9][Ff]")
# What may stand between two parts of one address: an estate or building name without a
# recognised suffix (华润城, 保利香槟国际, SOHO现代城), never punctuation or a stop word.
_ZH_GAP = re.compile(rf"(?:{_NAME}|[A-Za-z ]){{0,12}}")


def _zh_addresses(folded: str) -> Iterable[tuple[int, int]]:
    """Chinese addresses: pieces the pattern finds, joined when only a name lies between
    them; a piece counts if it has a street-level part and something it belongs to."""
    pieces: list[tuple[int, int, bool]] = []  # start, end, accepted
    for m in _ZH_ADDRESS.finditer(folded):
        if m.end() == m.start():
            continue
        parts = {name for name in _ZH_PARTS if m.group(name)}
        units = len(_UNIT_WORDS.findall(m.group("bld") or ""))
        street = any(p in parts for p in _STREET_LEVEL)
        anchored = any(p in parts for p in _ANCHOR)
        accepted = (len(parts) >= 2 and street and anchored) or units >= 2
        accepted = accepted or ("num" in parts and units >= 1)
        end = m.end()
        while end > m.start() and folded[end - 1] in " ,，、":
            end -= 1
        pieces.append((m.start(), end, accepted))
    merged: list[tuple[int, int, bool]] = []
    for start, end, accepted in pieces:
        if merged and _ZH_GAP.fullmatch(folded, merged[-1][1], start):
            first, _, before = merged.pop()
            merged.append((first, end, before or accepted))
        else:
            merged.append((start, end, accepted))
    for start, end, accepted in merged:
        if accepted:
            yield start, end


def _en_addresses(folded: str) -> Iterable[tuple[int, int]]:
    for m in _ENGLISH_ADDRESS.finditer(folded):
        if m.group("house") or m.group("units"):
            yield m.start(), m.end()


# --- finding and masking ---------------------------------------------------------------------


def _token_around(folded: str, start: int, end: int, digits: str) -> str:
    left = _ALNUM_LEFT.search(folded, 0, start)
    right = _ALNUM_RIGHT.match(folded[end:])
    before = left.group() if left else ""
    after = right.group() if right else ""
    return (before + digits + after).upper()


def find(text: str, *, known_ids: KnownIds | None = None) -> list[Span]:
    """Personal data in ``text``, in order, not overlapping. Numbers that ``known_ids`` says
    are the store's order or tracking numbers are not reported."""
    folded = fold(text)
    candidates: list[tuple[str, int, int]] = []
    has_digit = _ANY_DIGIT.search(folded) is not None
    if has_digit or _CN_RUN.search(folded):
        numbers = _numbers(folded)
        if numbers and known_ids is not None:
            asked = {f.digits for f in numbers} | {
                _token_around(folded, f.start, f.end, f.digits) for f in numbers
            }
            known = known_ids(asked) if asked else set()
            if known:
                numbers = [
                    f
                    for f in numbers
                    if f.digits not in known
                    and _token_around(folded, f.start, f.end, f.digits) not in known
                ]
        candidates.extend((f.kind, f.start, f.end) for f in numbers)
    if _EMAIL_TRIGGER.search(folded):
        candidates.extend(("email", m.start(), m.end()) for m in _EMAIL.finditer(folded))
    if _ZH_TRIGGER.search(folded):
        candidates.extend(("address", s, e) for s, e in _zh_addresses(folded))
    if has_digit and _EN_TRIGGER.search(folded):
        candidates.extend(("address", s, e) for s, e in _en_addresses(folded))
    return _resolve(candidates)


def _resolve(candidates: list[tuple[str, int, int]]) -> list[Span]:
    chosen: list[Span] = []
    for kind, start, end in sorted(candidates, key=lambda c: (_PRIORITY[c[0]], c[1] - c[2])):
        if all(end <= s.start or start >= s.end for s in chosen):
            chosen.append(Span(kind, start, end))
    return sorted(chosen, key=lambda s: s.start)


_LABELS = {
    "zh": {"id_card": "[身份证]", "address": "[地址]", "card": "[银行卡 尾号{last}]"},
    "en": {"id_card": "[ID number]", "address": "[address]", "card": "[card ending {last}]"},
}
_HAS_CJK = re.compile(r"[\u3400-\u9fff]")


def _digits_of(text: str) -> str:
    return fold(text).translate(_CN_MAP).translate({ord(c): None for c in " -+()"})


def mask_span(kind: str, raw: str, lang: str) -> str:
    """The replacement for one finding (``raw`` is the text it covers)."""
    labels = _LABELS[lang]
    if kind == "phone":
        national = re.sub(r"[^0-9]", "", _digits_of(raw))[-11:]
        return f"{national[:3]}****{national[-4:]}"
    if kind == "landline":
        digits = re.sub(r"[^0-9]", "", _digits_of(raw))
        if digits.startswith("0086"):
            digits = "0" + digits[4:]
        elif digits.startswith("86"):
            digits = "0" + digits[2:]
        area = 3 if digits[1] in "12" else 4
        return f"{digits[:area]}-****{digits[-4:]}"
    if kind == "bank_card":
        return labels["card"].format(last=re.sub(r"[^0-9]", "", _digits_of(raw))[-4:])
    if kind == "email":
        folded = fold(raw)
        at = re.search(r" ?@ ?| ?[\(\[\{] ?at ?[\)\]\}] ?", folded, re.IGNORECASE)
        if at is None:  # pragma: no cover - the pattern guarantees one
            return "***"
        domain = re.sub(r" ?[\(\[\{] ?dot ?[\)\]\}] ?", ".", folded[at.end() :], flags=re.I)
        return f"{folded[0]}***@{domain}"
    return labels[kind]


def mask(
    text: str,
    *,
    known_ids: KnownIds | None = None,
    lang: str | None = None,
    spans: list[Span] | None = None,
) -> str:
    """``text`` with every finding replaced by its mask (see the module docstring)."""
    if not text:
        return text
    found = find(text, known_ids=known_ids) if spans is None else spans
    if not found:
        return text
    language = lang if lang in _LABELS else ("zh" if _HAS_CJK.search(text) else "en")
    out: list[str] = []
    last = 0
    for span in found:
        out.append(text[last : span.start])
        out.append(mask_span(span.kind, text[span.start : span.end], language))
        last = span.end
    out.append(text[last:])
    return "".join(out)


# --- the store look-up -----------------------------------------------------------------------


class StoreIdLookup:
    """``known_ids`` backed by the store: which candidates are order or tracking numbers.

    Answers (both yes and no) are cached, up to ``max_cached`` strings, so masking a
    transcript asks the database once per new number. Use one per unit of work or accept
    that an order created after the first question is not seen until the cache is cleared.
    """

    def __init__(self, session: Session, *, max_cached: int = 50_000) -> None:
        self.session = session
        self.max_cached = max_cached
        self._cache: dict[str, bool] = {}

    def __call__(self, candidates: set[str]) -> set[str]:
        unknown = {c for c in candidates if c not in self._cache and len(c) <= 64}
        if unknown:
            found: set[str] = set()
            ordered = sorted(unknown)
            for i in range(0, len(ordered), 500):
                chunk = ordered[i : i + 500]
                query: Any = union(
                    select(Order.order_number).where(Order.order_number.in_(chunk)),
                    select(Shipment.tracking_number).where(Shipment.tracking_number.in_(chunk)),
                )
                found.update(v for v in self.session.scalars(query) if v is not None)
            if len(self._cache) + len(unknown) > self.max_cached:
                self._cache.clear()
            for c in unknown:
                self._cache[c] = c in found
        return {c for c in candidates if self._cache.get(c)}

    def clear(self) -> None:
        self._cache.clear()


@dataclass
class Masker:
    """``find`` and ``mask`` bound to one ``known_ids`` look-up."""

    known_ids: KnownIds | None = None

    def find(self, text: str) -> list[Span]:
        return find(text, known_ids=self.known_ids)

    def mask(self, text: str, *, lang: str | None = None) -> str:
        return mask(text, known_ids=self.known_ids, lang=lang)


def masker_for_session(session: Session, *, max_cached: int = 50_000) -> Masker:
    """A masker that leaves the store's own order and tracking numbers readable, looked up
    through ``session`` (cached)."""
    return Masker(known_ids=StoreIdLookup(session, max_cached=max_cached))
