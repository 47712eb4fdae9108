#!/usr/bin/env python
"""Check the NLU training data under data/nlu/ before `rasa train`.

Run from the repository root with the engine environment:

    .venv-engine/bin/python scripts/check_nlu_data.py

What it checks (any failure -> exit status 1, with a report):

  1. every file is valid Rasa 3.x YAML (``version: "3.1"``, an ``nlu:`` list);
     intent examples live in data/nlu/<lang>/*.yml, regex/synonym/lookup entries in
     data/nlu/entities.yml;
  2. only the intents of the intent contract (docs: INTENTS.md) are used, and every
     contract intent has at least the minimum number of examples in every language;
  3. no example occurs twice, within one intent or across intents/languages
     (compared after Unicode NFKC, case folding, and removing punctuation,
     symbols and whitespace);
  4. entity annotations parse, use known entity types, and carry canonical values
     (colours as English lowercase words, sizes as S/M/L/XL/XXL/XXXL or a shoe size,
     quantities as digits; order numbers 10-19 digits; phone numbers a mobile number
     or its last four digits);
  5. every annotated entity starts and ends on a jieba token boundary (after loading
     data/jieba/userdict.txt, tokenised exactly as Rasa's JiebaTokenizer does), and in an
     English example also on a word boundary;
  6. synonyms and annotated values do not map one text to two different values, and
     the regexes compile;
  7. pure emoji / single characters appear only in out_of_scope.

Examples are normalised the way the engine does before the model sees them
(engine.textnorm.normalize: NFKC, traditional -> simplified, white space) for the duplicate
and token-boundary checks. config.yml tokenises both languages with JiebaTokenizer, so every
example (zh and en) is checked against jieba tokens; English also against word boundaries.

Near-duplicates that differ only by Chinese sentence particles are reported as warnings.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

try:
    import jieba
    import yaml
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(f"check_nlu_data: missing dependency ({exc}); run with .venv-engine/bin/python")

ROOT = Path(__file__).resolve().parent.parent

# The model sees text after engine.components.TextNormalizer (NFKC, traditional -> simplified,
# white space -> " ", one character for one character); check what the model sees.
sys.path.insert(0, str(ROOT))
try:
    from engine.textnorm import normalize as model_normalize
except ImportError:  # pragma: no cover - fall back to the same steps done here
    try:
        from opencc import OpenCC

        _T2S = OpenCC("t2s")
    except ImportError:
        _T2S = None

    def model_normalize(text: str) -> str:
        out = []
        for ch in text:
            if ch.isspace():
                out.append(" ")
                continue
            folded = unicodedata.normalize("NFKC", ch)
            if len(folded) != 1:
                out.append(ch)
                continue
            if _T2S is not None and "\u4e00" <= folded <= "\u9fff":
                simplified = _T2S.convert(folded)
                folded = simplified if len(simplified) == 1 else folded
            out.append(folded)
        return "".join(out)


NLU_DIR = ROOT / "data" / "nlu"
ENTITIES_FILE = NLU_DIR / "entities.yml"
USERDICT = ROOT / "data" / "jieba" / "userdict.txt"
# JiebaTokenizer loads every file in this folder (userdict.txt, and catalogue.txt written by
# `python -m bot.cli catalogue-vocab`), so the alignment check loads them all too.
DICT_DIR = USERDICT.parent
LANGUAGES = ("zh", "en")

# The intent contract (INTENTS.md). Names are the product's vocabulary: never rename.
MIN_EXAMPLES = {
    "greet": 30,
    "goodbye": 30,
    "thank": 30,
    "affirm": 30,
    "deny": 30,
    "inform": 60,
    "out_of_scope": 80,
    # service intents: 45, or 70 where they are easily confused with a neighbour
    "order_status": 70,
    "shipping_delay": 70,
    "shipping_info": 70,
    "cancel_order": 70,
    "modify_order": 45,
    "return_refund": 70,
    "exchange": 70,
    "product_question": 70,
    "product_recommendation": 70,
    "coupon_promotion": 70,
    "payment_issue": 45,
    "invoice": 45,
    "membership_points": 45,
    "complaint": 70,
    "human_agent": 45,
}
CONTRACT_INTENTS = set(MIN_EXAMPLES)

# Where each intent is expected to live (a misplaced intent is only a warning).
TOPIC_FILES = {
    "chitchat.yml": {"greet", "goodbye", "thank", "affirm", "deny", "out_of_scope"},
    "orders.yml": {
        "order_status",
        "shipping_delay",
        "shipping_info",
        "cancel_order",
        "modify_order",
    },
    "returns.yml": {"return_refund", "exchange"},
    "products.yml": {"product_question", "product_recommendation", "coupon_promotion"},
    "account.yml": {"payment_issue", "invoice", "membership_points"},
    "service.yml": {"complaint", "human_agent"},
    "inform.yml": {"inform"},
}

ENTITY_TYPES = {"order_number", "phone_number", "size", "colour", "product", "quantity"}
CANONICAL_COLOURS = {
    "black",
    "white",
    "grey",
    "red",
    "pink",
    "orange",
    "yellow",
    "green",
    "blue",
    "navy",
    "purple",
    "brown",
    "beige",
    "khaki",
    "gold",
    "silver",
    "burgundy",
}
CANONICAL_SIZES = {"XS", "S", "M", "L", "XL", "XXL", "XXXL"}
SHOE_SIZE = re.compile(r"^\d{1,2}(\.5)?$")
ORDER_NUMBER = re.compile(r"^\d{10,19}$")
PHONE_NUMBER = re.compile(r"^(\+?\d[\d -]{6,18}\d|\d{4})$")

# Same pattern Rasa 3.6 uses (rasa/shared/nlu/training_data/entities_parser.py).
ENTITY_REGEX = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)"
    r"|\{(?P<entity_dict>[^}]+?)\}|\[(?P<list_entity_dicts>.*?)\])"
)
LEFTOVER_MARKUP = re.compile(r"\]\(|\]\{|\[[^\]]*\]\s*[({]")

ZH_PARTICLES = "啊呀呢吧哦嘛哈啦么吗呗哇噢喔嘞咯滴的了亲"


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, msg: str) -> None:
        self.errors.append(msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def parse_example(raw: str):
    """Return (plain_text, entities) the way Rasa does, or raise ValueError."""
    entities = []
    offset = 0
    for match in ENTITY_REGEX.finditer(raw):
        gd = match.groupdict()
        text = gd["entity_text"]
        if gd["list_entity_dicts"] is not None and not (gd["entity"] or gd["entity_dict"]):
            raise ValueError(f"multi-entity annotation not supported here: {match.group(0)}")
        if gd["entity_dict"]:
            try:
                attrs = json.loads("{" + gd["entity_dict"] + "}")
            except json.JSONDecodeError as exc:
                raise ValueError(f"bad JSON in {match.group(0)!r}: {exc}") from None
            etype = attrs.get("entity")
            value = attrs.get("value", text)
            extra = set(attrs) - {"entity", "value", "role", "group"}
            if extra:
                raise ValueError(f"unknown keys {sorted(extra)} in {match.group(0)!r}")
        else:
            etype = gd["entity"]
            value = gd["value"] or text
        if not etype:
            raise ValueError(f"annotation without entity type: {match.group(0)!r}")
        start = match.start() - offset
        end = start + len(text)
        offset += len(match.group(0)) - len(text)
        entities.append(
            {"entity": etype, "value": str(value), "text": text, "start": start, "end": end}
        )
    plain = ENTITY_REGEX.sub(lambda m: m.group("entity_text"), raw)
    if LEFTOVER_MARKUP.search(plain):
        raise ValueError("unparsed entity markup left in the text")
    return plain, entities


def norm_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "PSZC":
            continue
        kept.append(ch)
    # text made only of emoji/punctuation keeps its symbols, so "🤣" != "😂😂"
    return "".join(kept) or "".join(text.split())


def is_trivial(text: str) -> bool:
    """Pure emoji/punctuation, or a single character."""
    core = [ch for ch in unicodedata.normalize("NFKC", text) if not ch.isspace()]
    if len(core) <= 1:
        return True
    return all(unicodedata.category(ch)[0] in "PSC" or ord(ch) in (0x200D, 0xFE0F) for ch in core)


def load_yaml(path: Path, report: Report):
    try:
        with path.open(encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        report.error(f"{rel(path)}: not valid UTF-8 YAML: {exc}")
        return None
    if not isinstance(doc, dict):
        report.error(f"{rel(path)}: top level must be a mapping")
        return None
    if str(doc.get("version")) != "3.1" or not isinstance(doc.get("version"), str):
        report.error(f'{rel(path)}: needs version: "3.1" (a quoted string)')
    nlu = doc.get("nlu")
    if not isinstance(nlu, list):
        report.error(f"{rel(path)}: needs an 'nlu:' list")
        return None
    extra = set(doc) - {"version", "nlu"}
    if extra:
        report.error(f"{rel(path)}: unexpected top-level keys {sorted(extra)}")
    return nlu


def block_lines(path: Path, item: dict, key: str, report: Report) -> list[str]:
    examples = item.get("examples")
    if not isinstance(examples, str):
        report.error(f"{rel(path)}: {key} '{item.get(key)}' needs an 'examples: |' block")
        return []
    lines = []
    for ln in examples.splitlines():
        if not ln.strip():
            continue
        s = ln.strip()
        if not s.startswith("- "):
            report.error(
                f"{rel(path)}: {key} '{item.get(key)}': line does not start with '- ': {ln!r}"
            )
            continue
        lines.append(s[2:].strip())
    return lines


def check_userdict(report: Report) -> None:
    if not USERDICT.exists():
        report.error(f"{rel(USERDICT)} is missing")
        return
    for path in sorted(p for p in DICT_DIR.iterdir() if p.is_file()):
        check_dictionary(report, path)


def check_dictionary(report: Report, path: Path) -> None:
    seen = {}
    pat = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")
    for n, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        s = ln.strip()
        if not s or s.startswith("#"):
            if s.startswith("#"):
                report.error(f"{rel(path)}:{n}: jieba has no comments; '#' lines are read as words")
            continue
        m = pat.match(s)
        word = m.group(1)
        if " " in word:
            report.error(f"{rel(path)}:{n}: word contains a space (freq/tag malformed?): {s!r}")
        if word in seen:
            report.warn(f"{rel(path)}:{n}: '{word}' already on line {seen[word]}")
        seen[word] = n


def word_boundary_ok(text: str, start: int, end: int) -> bool:
    def is_word(ch: str) -> bool:
        return ch.isalnum() or ch in "_"

    if start >= end or text[start].isspace() or text[end - 1].isspace():
        return False
    if start > 0 and is_word(text[start - 1]) and is_word(text[start]):
        return False
    return not (end < len(text) and is_word(text[end - 1]) and is_word(text[end]))


def main() -> int:
    report = Report()
    jieba.setLogLevel(60)
    check_userdict(report)
    for path in sorted(p for p in DICT_DIR.iterdir() if p.is_file()):
        jieba.load_userdict(str(path))

    counts: dict[str, Counter] = {lang: Counter() for lang in LANGUAGES}
    seen_keys: dict[str, tuple] = {}
    particle_keys: dict[str, tuple] = {}
    value_of_text: dict[tuple, tuple] = {}  # (entity, text.lower()) -> (value, where)
    entity_counts: Counter = Counter()

    for lang in LANGUAGES:
        files = sorted((NLU_DIR / lang).glob("*.yml"))
        if not files:
            report.error(f"data/nlu/{lang}/ has no .yml files")
        for path in files:
            nlu = load_yaml(path, report)
            if nlu is None:
                continue
            for item in nlu:
                if not isinstance(item, dict) or "intent" not in item:
                    report.error(
                        f"{rel(path)}: only '- intent:' entries belong here, found {item!r:.80}"
                    )
                    continue
                intent = item["intent"]
                if intent not in CONTRACT_INTENTS:
                    report.error(f"{rel(path)}: intent '{intent}' is not in the intent contract")
                expected = TOPIC_FILES.get(path.name)
                if expected is not None and intent not in expected:
                    report.warn(f"{rel(path)}: intent '{intent}' is expected in another topic file")
                for raw in block_lines(path, item, "intent", report):
                    where = f"{rel(path)} [{intent}] {raw!r}"
                    try:
                        text, entities = parse_example(raw)
                    except ValueError as exc:
                        report.error(f"{where}: {exc}")
                        continue
                    counts[lang][intent] += 1
                    if is_trivial(text) and intent != "out_of_scope":
                        report.error(
                            f"{where}: pure emoji / single characters only belong in out_of_scope"
                        )
                    model_text = model_normalize(text)
                    if len(model_text) != len(text):  # offsets would no longer hold
                        report.error(f"{where}: normalisation changed the text length")
                        model_text = text
                    key = norm_key(model_text)
                    if not key and intent != "out_of_scope":
                        report.error(f"{where}: empty after normalising")
                    if key in seen_keys:
                        other = seen_keys[key]
                        kind = (
                            "exact duplicate"
                            if other[2] == text
                            else "duplicate (ignoring case/punctuation/spaces/traditional)"
                        )
                        scope = (
                            "same intent" if other[1] == intent else f"also in intent '{other[1]}'"
                        )
                        report.error(f"{where}: {kind} of {other[2]!r} in {other[0]} ({scope})")
                    else:
                        seen_keys[key] = (rel(path), intent, text)
                        if lang == "zh":
                            pkey = "".join(ch for ch in key if ch not in ZH_PARTICLES)
                            if pkey and pkey in particle_keys and len(pkey) > 2:
                                other = particle_keys[pkey]
                                report.warn(
                                    f"{where}: differs only by particles from {other[2]!r} [{other[1]}]"
                                )
                            else:
                                particle_keys.setdefault(pkey, (rel(path), intent, text))

                    tokens = None
                    if entities:
                        tokens = list(jieba.tokenize(model_text))
                        starts = {s for _, s, _ in tokens}
                        ends = {e for _, _, e in tokens}
                    for ent in entities:
                        etype, value, etext = ent["entity"], ent["value"], ent["text"]
                        entity_counts[(lang, etype)] += 1
                        if etype not in ENTITY_TYPES:
                            report.error(f"{where}: unknown entity type '{etype}'")
                        if etext != etext.strip():
                            report.error(
                                f"{where}: entity '{etext}' has leading/trailing whitespace"
                            )
                        if etype == "colour" and value not in CANONICAL_COLOURS:
                            report.error(
                                f"{where}: colour value '{value}' is not canonical {sorted(CANONICAL_COLOURS)}"
                            )
                        if (
                            etype == "size"
                            and value not in CANONICAL_SIZES
                            and not SHOE_SIZE.match(value)
                        ):
                            report.error(
                                f"{where}: size value '{value}' is not canonical (S/M/L/XL/XXL/XXXL or a shoe size)"
                            )
                        if etype == "quantity" and not value.isdigit():
                            report.error(
                                f"{where}: quantity value '{value}' must be digits (add \"value\")"
                            )
                        if etype == "order_number" and not ORDER_NUMBER.match(value):
                            report.error(f"{where}: order number '{value}' is not 10-19 digits")
                        if etype == "phone_number" and not PHONE_NUMBER.match(value):
                            report.error(
                                f"{where}: phone number '{value}' is neither a number nor its last four digits"
                            )
                        if etype in {"colour", "size", "quantity"}:
                            k = (etype, etext.lower())
                            prev = value_of_text.get(k)
                            if prev and prev[0] != value:
                                report.error(
                                    f"{where}: '{etext}' annotated as {etype}='{value}' but as '{prev[0]}' in {prev[1]}"
                                )
                            value_of_text.setdefault(k, (value, where))
                        if ent["start"] not in starts or ent["end"] not in ends:
                            toks = " | ".join(w for w, _, _ in tokens)
                            report.error(
                                f"{where}: entity '{etext}' ({etype}) does not fall on jieba token boundaries: {toks}"
                            )
                        if lang == "en" and not word_boundary_ok(
                            model_text, ent["start"], ent["end"]
                        ):
                            report.error(f"{where}: entity '{etext}' ({etype}) cuts through a word")

    # entities.yml: regexes, synonyms, lookups
    if not ENTITIES_FILE.exists():
        report.error(f"{rel(ENTITIES_FILE)} is missing")
    else:
        nlu = load_yaml(ENTITIES_FILE, report) or []
        kinds = Counter()
        syn_of: dict[str, str] = {}
        for item in nlu:
            if not isinstance(item, dict):
                report.error(f"{rel(ENTITIES_FILE)}: bad entry {item!r:.80}")
                continue
            kind = next((k for k in ("regex", "synonym", "lookup") if k in item), None)
            if kind is None:
                report.error(
                    f"{rel(ENTITIES_FILE)}: only regex/synonym/lookup entries belong here, found {item!r:.80}"
                )
                continue
            kinds[(kind, item[kind])] += 1
            lines = block_lines(ENTITIES_FILE, item, kind, report)
            if not lines:
                report.error(f"{rel(ENTITIES_FILE)}: {kind} '{item[kind]}' has no examples")
            if kind == "regex":
                for pat in lines:
                    try:
                        re.compile(pat)
                    except re.error as exc:
                        report.error(
                            f"{rel(ENTITIES_FILE)}: regex '{item[kind]}' {pat!r} does not compile: {exc}"
                        )
            elif kind == "synonym":
                target = str(item[kind])
                for s in lines:
                    prev = syn_of.get(s.lower())
                    if prev is not None and prev != target:
                        report.error(
                            f"{rel(ENTITIES_FILE)}: synonym '{s}' maps to both '{prev}' and '{target}'"
                        )
                    syn_of[s.lower()] = target
            else:
                dup = [w for w, c in Counter(lines).items() if c > 1]
                if dup:
                    report.warn(f"{rel(ENTITIES_FILE)}: lookup '{item[kind]}' repeats {dup}")
        for needed in (("regex", "order_number"), ("regex", "phone_number"), ("lookup", "product")):
            if not kinds[needed]:
                report.error(f"{rel(ENTITIES_FILE)}: missing {needed[0]} '{needed[1]}'")
        for (_etype, text), (value, where) in value_of_text.items():
            syn = syn_of.get(text)
            if syn is not None and syn != value:
                report.error(
                    f"{where}: '{text}' annotated as '{value}' but entities.yml maps it to '{syn}'"
                )

    # minimum counts
    for lang in LANGUAGES:
        for intent, minimum in MIN_EXAMPLES.items():
            if counts[lang][intent] < minimum:
                report.error(
                    f"{lang}: intent '{intent}' has {counts[lang][intent]} examples, needs at least {minimum}"
                )

    # report
    print("NLU examples per intent")
    print(f"  {'intent':<24}" + "".join(f"{lang:>6}" for lang in LANGUAGES) + "   min")
    for intent in sorted(MIN_EXAMPLES):
        row = "".join(f"{counts[lang][intent]:>6}" for lang in LANGUAGES)
        print(f"  {intent:<24}{row}{MIN_EXAMPLES[intent]:>6}")
    totals = "".join(f"{sum(counts[lang].values()):>6}" for lang in LANGUAGES)
    print(f"  {'TOTAL':<24}{totals}")
    print(
        "Annotated entities: "
        + ", ".join(f"{lang}/{e}={n}" for (lang, e), n in sorted(entity_counts.items()))
    )
    if report.warnings:
        print(f"\n{len(report.warnings)} warning(s):")
        for w in report.warnings:
            print(f"  WARN  {w}")
    if report.errors:
        print(f"\n{len(report.errors)} error(s):")
        for e in report.errors:
            print(f"  ERROR {e}")
        print("\nNLU data check FAILED")
        return 1
    print("\nNLU data check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
