"""Lexicon-based sentiment scoring for shopper messages, Chinese first, then English.

No pretrained model can be used here, so the scorer is a lexicon plus rules, in the spirit of
VADER. The words live in ``bot/lexicons/`` (data, not code), loaded once and cached:

- ``sentiment_zh.tsv`` / ``sentiment_en.tsv``: word or phrase and a weight in [-3, 3];
- ``negators_*.tsv``, ``degree_*.tsv``: negators (with a strength) and degree adverbs
  (intensifiers > 1, diminishers < 1);
- ``contrast.tsv``: 但是/不过/but/however… (what follows weighs more) and 虽然/although…;
- ``clause_markers.tsv``: question, conditional and sarcasm words;
- ``emoji.tsv``, ``strong_negative.txt`` (insults and threats), ``traditional.tsv``.

How a message is read:

1. NFKC, traditional -> simplified characters, runs of three or more identical Chinese
   characters collapsed (and remembered as emphasis), URLs dropped.
2. Chinese is segmented by bidirectional longest match against every list at once (no word
   segmenter; see ``_segment``). Longer entries shield shorter ones: 快递 shields 快,
   不好意思 shields 不好, 垃圾袋 shields 垃圾. An A-not-A frame (好不好用) reads as a question.
   Latin text becomes lower-case word tokens, merged into the longest known phrase
   ("waste of money"); elongations ("sooo") and simple suffixes are undone.
3. Punctuation, contrast words and spaces between Chinese characters end clauses. Inside a
   clause a negator flips a word starting at most three tokens later (a negated positive
   becomes clearly negative, a negated negative only weakly positive: 不差, "not bad"; after
   an imperative one a negative word stays negative: 别敷衍我), and a degree adverb scales
   the next word within two tokens.
4. A clause's positive and mild negative words count little when it is a question (质量好吗,
   贵不贵, "is it warm?"; but not 为什么这么慢), and everything counts little in a conditional
   (如果坏了). "!!!" intensifies a clause, "？？？" also adds impatience. Before a contrast
   word a clause weighs x0.5, after it x1.5. A sarcasm marker (呵呵, 🙄, "oh great") turns
   the message's positive words negative.
5. The raw sum is squashed to [-1, 1] with ``raw / sqrt(raw**2 + SQUASH_ALPHA)``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

Label = Literal["negative", "neutral", "positive"]

# Label thresholds, chosen on tests/data/sentiment_labelled.yml (286 messages) by a sweep of
# 0.10-0.45: accuracy is flat for the negative threshold from -0.10 to -0.30 and best for the
# positive one from 0.30 to 0.40. For scale: one plain word (满意, 差, great) scores about
# +-0.7, 谢谢/thanks 0.45, a softened or litotes one (还行, fine, 没有不满意, "not unhappy")
# 0.24-0.31, 有点慢 -0.46, a positive word inside a question (质量好吗？) under 0.1. So a lone
# lukewarm word stays neutral, while a mild complaint already counts as negative.
POSITIVE_THRESHOLD = 0.3
NEGATIVE_THRESHOLD = -0.25
# At or below this score a message is a strong negative even without a trigger word. On the
# labelled set the angry messages without a trigger word score -0.91 and below, the plain
# complaints -0.90 and above; the round -0.9 errs towards a handoff.
STRONG_THRESHOLD = -0.9
SQUASH_ALPHA = 4.0

NEGATION_WINDOW = 3  # a negator reaches a word starting at most this many tokens later
DEGREE_WINDOW = 2  # likewise for degree adverbs
NEGATED_POSITIVE = 0.8  # 不满意-like: most of the weight, sign flipped
NEGATED_NEGATIVE = 0.3  # 不差 / not bad / 不是要投诉: weakly positive, often just neutral
DOUBLE_NEGATION = 0.6
QUESTION_POSITIVE = 0.1
QUESTION_MILD_NEGATIVE = 0.3  # 贵吗 / 偏大吗 / is it expensive? (not 为什么这么慢, 是不是坏了)
MILD = 1.2  # largest lexicon weight (absolute) that counts as a mild word
CONDITIONAL = 0.2
CONCESSIVE = 0.5
BEFORE_CONTRAST = 0.5
AFTER_CONTRAST = 1.5
EMPHASIS = 1.3  # repeated characters, ALL CAPS words
EXCLAMATION_STEP = 0.2  # per "!", at most three
IMPATIENCE_STEP = 0.4  # per "?" beyond the first, at most two
DEFAULT_STRONG_WEIGHT = -2.5

_ContrastKind = Literal["but", "concessive", "trailing"]
_MarkerKind = Literal["question", "question_start", "conditional", "sarcasm"]


@dataclass(frozen=True)
class Sentiment:
    """The sentiment of one shopper message."""

    score: float  # -1.0 (very negative) .. 1.0 (very positive)
    label: Label
    strong_negative: bool  # angry / threatening (for handoff triggers)


@dataclass
class _Entry:
    weight: float | None = None
    negator: float | None = None
    imperative: bool = False  # 别/不要/clause-initial "don't": a negative word stays negative
    degree: float | None = None
    contrast: _ContrastKind | None = None
    marker: _MarkerKind | None = None
    strong: bool = False

    @property
    def sentiment(self) -> bool:
        return bool(self.weight)


@dataclass(frozen=True)
class _Lexicon:
    entries: dict[str, _Entry]
    max_chars: int  # longest key without spaces (symbol scanning)
    max_cjk: int  # longest all-Chinese key
    max_words: int  # longest key in words (English phrases)
    traditional: dict[int, str]


@dataclass
class _Token:
    text: str
    entry: _Entry | None = None
    emphasis: float = 1.0
    latin: bool = False
    is_break: bool = False  # a punctuation run that ends a clause
    bangs: int = 0
    questions: int = 0


def _data_lines(name: str) -> list[list[str]]:
    path = resources.files(__package__ or "bot") / "lexicons" / name
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append([part.strip() for part in line.split("\t")])
    return rows


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    entries: dict[str, _Entry] = {}

    def entry(key: str) -> _Entry:
        return entries.setdefault(unicodedata.normalize("NFKC", key).lower(), _Entry())

    for name in ("sentiment_zh.tsv", "sentiment_en.tsv", "emoji.tsv"):
        for key, weight in _data_lines(name):
            entry(key).weight = float(weight)
    for name in ("negators_zh.tsv", "negators_en.tsv"):
        for key, strength, *flags in _data_lines(name):
            entry(key).negator = float(strength)
            entry(key).imperative = flags == ["imperative"]
    for name in ("degree_zh.tsv", "degree_en.tsv"):
        for key, multiplier in _data_lines(name):
            entry(key).degree = float(multiplier)
    for key, kind in _data_lines("contrast.tsv"):
        if kind not in ("but", "concessive", "trailing"):
            raise ValueError(f"contrast.tsv: unknown kind {kind!r} for {key!r}")
        entry(key).contrast = kind  # type: ignore[assignment]
    for key, kind in _data_lines("clause_markers.tsv"):
        if kind not in ("question", "question_start", "conditional", "sarcasm"):
            raise ValueError(f"clause_markers.tsv: unknown kind {kind!r} for {key!r}")
        entry(key).marker = kind  # type: ignore[assignment]
    for (key,) in _data_lines("strong_negative.txt"):
        found = entry(key)
        found.strong = True
        if not found.weight:
            found.weight = DEFAULT_STRONG_WEIGHT
    traditional = {ord(trad): simp for trad, simp in _data_lines("traditional.tsv")}
    return _Lexicon(
        entries=entries,
        max_chars=max(len(key) for key in entries if " " not in key),
        max_cjk=max(len(key) for key in entries if all(_is_cjk(char) for char in key)),
        max_words=max(len(key.split()) for key in entries),
        traditional=traditional,
    )


_A_NOT_A = _Entry(marker="question")
_IMPERATIVE_OPENERS = frozenset({"don't", "dont", "do not"})


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


_URL = re.compile(r"https?://\S+|www\.\S+")
_INVISIBLE = re.compile("[\ufe0e\ufe0f\u200d\u200b\U0001f3fb-\U0001f3ff]")
_HYPHEN = re.compile(r"(?<=[A-Za-z0-9])[-/](?=[A-Za-z0-9])")
_LATIN = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*")
_BREAKS = set(",.;:!?。，；：！？…~～\n")
_LAUGHTER = set("哈呵嘻嘿")
_LONG_RUN = re.compile(r"(.)\1{2,}")


def _normalise(text: str, traditional: dict[int, str]) -> tuple[str, list[bool]]:
    """NFKC, simplified characters, collapsed Chinese character runs (flagged as emphasis)."""
    text = unicodedata.normalize("NFKC", text).translate(traditional)
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _URL.sub(" ", text)
    text = _INVISIBLE.sub("", text)
    text = _HYPHEN.sub(" ", text)
    chars: list[str] = []
    emphasis: list[bool] = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        if j - i >= 3 and _is_cjk(text[i]):
            keep = 2 if text[i] in _LAUGHTER else 1
            chars.extend(text[i] * keep)
            emphasis.extend([True] * keep)
        else:
            chars.extend(text[i:j])
            emphasis.extend([False] * (j - i))
        i = j
    return "".join(chars), emphasis


def _lookup_word(word: str, lex: _Lexicon) -> tuple[_Entry | None, float]:
    """An English word's entry, trying elongation ("sooo goood") and simple suffixes."""
    entries = lex.entries
    if word in entries:
        return entries[word], 1.0
    emphasis = 1.0
    candidates = [word]
    if _LONG_RUN.search(word):
        emphasis = EMPHASIS
        candidates = [_LONG_RUN.sub(r"\1\1", word), _LONG_RUN.sub(r"\1", word)]
        candidates.append(re.sub(r"(.)\1+", r"\1", candidates[1]))
    for candidate in candidates:
        if candidate in entries:
            return entries[candidate], emphasis
        for suffix, replacement in (
            ("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""),
            ("ing", "e"), ("ly", ""), ("ily", "y"),
        ):  # fmt: skip
            if len(candidate) > len(suffix) + 2 and candidate.endswith(suffix):
                stem = candidate[: -len(suffix)] + replacement
                if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "aeiousl":
                    stem = stem[:-1]  # jamming -> jam, shipped -> ship
                if stem in entries and entries[stem].sentiment:
                    return entries[stem], emphasis
    return None, emphasis


def _longest_match(run: str, lex: _Lexicon, backward: bool) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start, end = 0, len(run)
    while start < end:
        for size in range(min(lex.max_cjk, end - start), 0, -1):
            word = run[end - size : end] if backward else run[start : start + size]
            if size == 1 or word in lex.entries:
                break
        if backward:
            spans.append((end - size, end))
            end -= size
        else:
            spans.append((start, start + size))
            start += size
    return spans[::-1] if backward else spans


_PARTICLES = frozenset("了的啊吧呢啦呀哦嘛")


def _segment(run: str, lex: _Lexicon) -> list[tuple[int, int]]:
    """Bidirectional maximum matching of a run of Chinese characters.

    The reading with fewer words wins, then the one with fewer single characters, then the one
    with fewer words ending in a sentence particle (舒服/了, not 舒/服了; 太麻烦/了, not
    太/麻烦了), and otherwise the backward one (还/好看, not 还好/看).
    """
    forward = _longest_match(run, lex, backward=False)
    backward = _longest_match(run, lex, backward=True)

    def cost(spans: list[tuple[int, int]]) -> tuple[int, int, int]:
        singles = sum(1 for start, end in spans if end - start == 1)
        particle_ends = sum(
            1 for start, end in spans if end - start > 1 and run[end - 1] in _PARTICLES
        )
        return len(spans), singles, particle_ends

    return forward if cost(forward) < cost(backward) else backward


def _chinese_tokens(
    s: str, emphasised: list[bool], begin: int, end: int, lex: _Lexicon
) -> list[_Token]:
    """Tokens of the Chinese run s[begin:end].

    An A-not-A question frame (好不好用, 结不结实, 满不满意) becomes a question marker followed
    by the plain word, so it reads as a question, not as 好 + 不好用. Frames that are lexicon
    entries themselves (是不是, 会不会, 有没有) are left to the lexicon.
    """
    tokens: list[_Token] = []

    def add(start: int, stop: int) -> None:
        for offset, offset_end in _segment(s[start:stop], lex):
            word = s[start + offset : start + offset_end]
            emph = EMPHASIS if any(emphasised[start + offset : start + offset_end]) else 1.0
            tokens.append(_Token(text=word, entry=lex.entries.get(word), emphasis=emph))

    start = k = begin
    while k < end - 2:
        if s[k + 1] in "不没" and s[k] == s[k + 2] and s[k : k + 3] not in lex.entries:
            add(start, k)
            tokens.append(_Token(text=s[k : k + 2], entry=_A_NOT_A))
            start = k = k + 2
        else:
            k += 1
    add(start, end)
    return tokens


def _tokenise(text: str, lex: _Lexicon) -> list[_Token]:
    s, emphasised = _normalise(text, lex.traditional)
    lower = s.lower()
    mixed_case = any(c.islower() for c in s)  # ALL CAPS words stand out only in mixed case
    tokens: list[_Token] = []
    i, n = 0, len(s)
    while i < n:
        char = s[i]
        if char.isspace():
            j = i
            while j < n and s[j].isspace():
                j += 1
            if "\n" in s[i:j] or (tokens and j < n and _is_cjk(s[i - 1]) and _is_cjk(s[j])):
                tokens.append(_Token(text=",", is_break=True))
            i = j
            continue
        if _is_cjk(char):
            j = i
            while j < n and _is_cjk(s[j]):
                j += 1
            tokens.extend(_chinese_tokens(s, emphasised, i, j, lex))
            i = j
            continue
        if not char.isalnum():
            # Longest match: emoji, emoticons, sticker codes like [怒].
            for size in range(min(lex.max_chars, n - i), 0, -1):
                key = lower[i : i + size]
                if key in lex.entries and (size > 1 or not char.isascii()):
                    emph = EMPHASIS if any(emphasised[i : i + size]) else 1.0
                    tokens.append(_Token(text=key, entry=lex.entries[key], emphasis=emph))
                    i += size
                    break
            else:
                if char in _BREAKS:
                    j = i
                    while j < n and s[j] in _BREAKS:
                        j += 1
                    run = s[i:j]
                    tokens.append(
                        _Token(
                            text=run, is_break=True, bangs=run.count("!"), questions=run.count("?")
                        )
                    )
                    i = j
                else:
                    i += 1  # other symbols carry no sentiment
            continue
        match = _LATIN.match(s, i)
        if match is None:  # a non-Latin letter or digit (e.g. Japanese kana)
            i += 1
            continue
        raw = match.group()
        entry, emph = _lookup_word(raw.lower(), lex)
        if mixed_case and len(raw) >= 3 and raw.isupper() and raw.isalpha():
            emph *= EMPHASIS
        tokens.append(_Token(text=raw.lower(), entry=entry, emphasis=emph, latin=True))
        i = match.end()
    return _merge_phrases(tokens, lex)


def _merge_phrases(tokens: list[_Token], lex: _Lexicon) -> list[_Token]:
    """Replace runs of English words by the longest phrase in the lexicon."""
    merged: list[_Token] = []
    i = 0
    while i < len(tokens):
        if tokens[i].latin:
            run = 1
            while run < lex.max_words and i + run < len(tokens) and tokens[i + run].latin:
                run += 1
            for size in range(run, 1, -1):
                key = " ".join(token.text for token in tokens[i : i + size])
                if key in lex.entries:
                    emph = max(token.emphasis for token in tokens[i : i + size])
                    merged.append(_Token(key, lex.entries[key], emph, latin=True))
                    i += size
                    break
            else:
                merged.append(tokens[i])
                i += 1
        else:
            merged.append(tokens[i])
            i += 1
    return merged


@dataclass
class _Clause:
    """Running state of the clause being read."""

    positive: float = 0.0
    negative: float = 0.0
    mild_negative: float = 0.0  # the part of negative from mild words
    words: int = 0
    question: bool = False
    conditional: bool = False
    concessive: bool = False
    trailing_contrast: bool = False
    negator: tuple[float, int, int, bool] | None = None  # strength, position, count, imperative
    degree: tuple[float, int] | None = None  # multiplier, position


class _Reader:
    """Walks the tokens, turning clauses into weighted values."""

    def __init__(self, tokens: list[_Token], lex: _Lexicon) -> None:
        self.tokens = tokens
        self.lex = lex
        self.values: list[float] = []
        self.boost = 1.0  # x1.5 after a "but" until the next one
        self.strong = False
        self.clause = _Clause()
        self.sarcastic = any(
            token.entry is not None and token.entry.marker == "sarcasm" for token in tokens
        )

    def read(self) -> float:
        for index, token in enumerate(self.tokens):
            if token.is_break:
                self._close(token.bangs, token.questions)
            elif token.entry is None:
                self.clause.words += 1
            else:
                self._word(index, token, token.entry)
        self._close(0, 0)
        return sum(self.values)

    def _followed_by_sentiment(self, index: int) -> bool:
        for token in self.tokens[index + 1 : index + 1 + DEGREE_WINDOW]:
            if token.is_break:
                return False
            entry = token.entry
            if entry is not None and (entry.sentiment or entry.negator is not None):
                return True
        return False

    def _word(self, index: int, token: _Token, entry: _Entry) -> None:
        clause = self.clause
        if entry.contrast is not None:
            self._contrast(entry.contrast)
            clause = self.clause
        if entry.marker == "question" or (entry.marker == "question_start" and not clause.words):
            clause.question = True
        elif entry.marker == "conditional":
            clause.conditional = True
        position = clause.words
        clause.words += 1
        if entry.degree is not None and (not entry.sentiment or self._followed_by_sentiment(index)):
            live = clause.degree is not None and self._degree_live(position)
            previous = clause.degree[0] if live and clause.degree is not None else 1.0
            clause.degree = (min(previous * entry.degree * token.emphasis, 2.5), position)
            return
        if entry.negator is not None and not entry.sentiment:
            live = clause.negator is not None and position - clause.negator[1] <= NEGATION_WINDOW
            count = clause.negator[2] + 1 if live and clause.negator else 1
            # "别敷衍我" / "don't lie to me": an order not to do something bad is a complaint.
            imperative = entry.imperative or (position == 0 and token.text in _IMPERATIVE_OPENERS)
            clause.negator = (entry.negator, position, count, imperative)
            return
        weight = entry.weight or 0.0
        negator_before = clause.negator is not None and clause.negator[1] == position - 1
        if (
            not weight
            and entry.weight is not None
            and (self._degree_live(position) or negator_before)
        ):
            # 很好的 / 不太好的: a shield (好的 = "OK") right after a degree adverb or a negator
            # reads as its first character.
            head = self.lex.entries.get(token.text[0])
            weight = (head.weight or 0.0) if head is not None else 0.0
        if not weight:
            return
        value = weight * token.emphasis
        if clause.degree is not None and self._degree_live(position):
            value *= clause.degree[0]
            clause.degree = None
        negated = False
        if clause.negator is not None and position - clause.negator[1] <= NEGATION_WINDOW:
            strength, _, count, imperative = clause.negator
            if count % 2 == 0:
                value *= DOUBLE_NEGATION
            elif not (imperative and value < 0):
                negated = True
                flip = NEGATED_POSITIVE if value > 0 else NEGATED_NEGATIVE
                value = -value * flip * strength
            clause.negator = None
        if entry.strong and not negated:
            self.strong = True
        if value > 0 and self.sarcastic:
            value = -value * NEGATED_POSITIVE
        if value > 0:
            clause.positive += value
        else:
            clause.negative += value
            if abs(weight) <= MILD:
                clause.mild_negative += value

    def _degree_live(self, position: int) -> bool:
        degree = self.clause.degree
        return degree is not None and position - degree[1] <= DEGREE_WINDOW

    def _contrast(self, kind: _ContrastKind) -> None:
        opens_clause = self.clause.words == 0
        if kind == "trailing" and not opens_clause:
            self.clause.trailing_contrast = True
            return
        if kind in ("concessive", "trailing"):
            self._close(0, 0)
            self.clause.concessive = True
            return
        self._close(0, 0)
        self.values = [value * BEFORE_CONTRAST for value in self.values]
        self.boost = AFTER_CONTRAST

    def _close(self, bangs: int, questions: int) -> None:
        clause = self.clause
        self.clause = _Clause()
        if not clause.words:
            return
        if questions == 1:
            clause.question = True
        value = clause.positive + clause.negative
        if clause.question:
            value -= clause.positive * (1 - QUESTION_POSITIVE)
            value -= clause.mild_negative * (1 - QUESTION_MILD_NEGATIVE)
        if clause.conditional:
            value *= CONDITIONAL
        if bangs:
            value *= 1 + EXCLAMATION_STEP * min(bangs, 3)
        if questions >= 2:
            if value < 0:
                value *= 1 + EXCLAMATION_STEP * min(questions - 1, 2)
            if not clause.positive:
                value -= IMPATIENCE_STEP * min(questions - 1, 2)
        if clause.concessive:
            value *= CONCESSIVE
        if clause.trailing_contrast:
            self.values = [v * BEFORE_CONTRAST for v in self.values]
            value *= AFTER_CONTRAST
        self.values.append(value * self.boost)


def score(text: str) -> Sentiment:
    """Score one shopper message (Chinese, English or mixed).

    Returns the score in [-1, 1], its label (thresholds ``POSITIVE_THRESHOLD`` and
    ``NEGATIVE_THRESHOLD``) and whether the message is a strong negative: it contains an
    insult or a threat (骗子, 投诉, 12315, scam, report you, …) or scores at or below
    ``STRONG_THRESHOLD``. Strong negatives are meant to trigger a handoff to a human.
    """
    lex = _lexicon()
    reader = _Reader(_tokenise(text, lex), lex)
    raw = reader.read()
    value = raw / math.sqrt(raw * raw + SQUASH_ALPHA)
    value = max(-1.0, min(1.0, round(value, 4)))
    label: Label
    if value >= POSITIVE_THRESHOLD:
        label = "positive"
    elif value <= NEGATIVE_THRESHOLD:
        label = "negative"
    else:
        label = "neutral"
    # A trigger word is unambiguous enough to make any net-negative message a strong negative.
    strong = (reader.strong and value < 0) or value <= STRONG_THRESHOLD
    if strong:
        label = "negative"
    return Sentiment(score=value, label=label, strong_negative=strong)
