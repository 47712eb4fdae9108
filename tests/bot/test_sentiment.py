"""Tests of the lexicon-based sentiment scorer (bot/sentiment.py).

The behaviour tests pin the rules (negation, degree, contrast, emoji, punctuation, repeated
characters, traditional characters, mixed text). The accuracy test measures the scorer on the
hand-labelled, held-out set tests/data/sentiment_labelled.yml; ``pytest -s`` prints its
per-language confusion tables.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.sentiment import Sentiment, score

LABELLED = Path(__file__).resolve().parents[1] / "data" / "sentiment_labelled.yml"
LABELS = ("negative", "neutral", "positive")


def _label(text: str) -> str:
    return score(text).label


# --- API ------------------------------------------------------------------------------------


def test_result_shape() -> None:
    result = score("质量很好")
    assert isinstance(result, Sentiment)
    assert -1.0 <= result.score <= 1.0
    assert result.label in LABELS
    assert isinstance(result.strong_negative, bool)


@pytest.mark.parametrize("text", ["", "   ", "？", "!!!", "12345678", "🙂🙃" * 100, "哈" * 500])
def test_degenerate_input_does_not_fail(text: str) -> None:
    assert -1.0 <= score(text).score <= 1.0


# --- lexicon basics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["质量很好", "非常满意", "发货很快", "很好吃", "衣服很舒服", "五星好评", "物超所值",
     "great product", "love it", "fast shipping, well packaged", "delicious and fresh",
     "the staff were very helpful", "fits perfectly"],
)  # fmt: skip
def test_positive(text: str) -> None:
    assert _label(text) == "positive"


@pytest.mark.parametrize(
    "text",
    ["质量太差了", "毛衣洗了一次就起球", "有股怪味", "东西是坏的", "发错货了", "客服态度很差",
     "物流太慢", "是假货", "the item arrived broken", "terrible quality", "very slow delivery",
     "it smells bad", "the customer service was rude", "wrong size and faded after one wash"],
)  # fmt: skip
def test_negative(text: str) -> None:
    assert _label(text) == "negative"


@pytest.mark.parametrize(
    "text",
    ["我的快递到哪了", "退款什么时候到账", "订单号是538872953711", "包邮吗", "你好，在吗",
     "能开发票吗", "这款有货吗", "我要退货", "快递发的哪家", "不好意思，想问一下尺码",
     "垃圾袋有货吗", "where is my order?", "can I change my delivery address",
     "do you ship to Canada?", "I need an invoice", "how do points work"],
)  # fmt: skip
def test_neutral_information_requests(text: str) -> None:
    assert _label(text) == "neutral"


def test_store_words_are_neutral() -> None:
    for word in ("快递", "退款", "订单", "物流", "客服", "发货", "refund", "order", "delivery"):
        assert score(word).score == 0.0, word


def test_positive_words_in_a_question_count_little() -> None:
    assert _label("质量好吗？") == "neutral"
    assert _label("有什么推荐的") == "neutral"
    assert _label("Is this jacket warm?") == "neutral"
    assert _label("Can you recommend a good laptop?") == "neutral"


def test_mild_negative_words_in_a_question_count_little() -> None:
    assert _label("贵不贵") == "neutral"
    assert _label("这款偏大吗？") == "neutral"
    assert _label("is it expensive?") == "neutral"
    assert _label("为什么这么慢？") == "negative"
    assert _label("是不是坏了？") == "negative"
    assert _label("why isn't my parcel here yet?") == "negative"


def test_conditional_counts_little() -> None:
    assert _label("如果坏了可以换吗") == "neutral"
    assert _label("what if it arrives damaged?") == "neutral"


# --- negation -------------------------------------------------------------------------------


def test_negation_flips_chinese() -> None:
    assert _label("满意") == "positive"
    assert _label("不满意") == "negative"
    assert _label("不太满意") == "negative"
    assert _label("一点也不好用") == "negative"
    assert _label("没有不满意") != "negative"
    assert _label("包装没有破损") != "negative"
    assert score("不差").score > 0


def test_negation_flips_english() -> None:
    assert _label("not bad") != "negative"
    assert score("not bad").score > 0
    assert _label("not good") == "negative"
    assert _label("not very good") == "negative"
    assert _label("I don't like it") == "negative"
    assert _label("this is not what I expected, never happy with it") == "negative"
    assert _label("no problem at all") != "negative"


def test_imperative_negation_keeps_a_complaint_negative() -> None:
    assert _label("别再敷衍我了") == "negative"
    assert _label("不要再拖了") == "negative"
    assert _label("don't lie to me") == "negative"
    assert _label("stop ignoring my messages") == "negative"
    assert _label("别买") != "positive"


def test_polite_mafan_is_not_a_complaint() -> None:
    assert _label("麻烦发一下物流单号") == "neutral"
    assert _label("麻烦帮我查一下") == "neutral"
    assert _label("退货太麻烦了") == "negative"


def test_negated_positive_is_milder_when_softened() -> None:
    assert score("不好").score < score("不太好").score < 0
    assert score("not good").score < score("not very good").score < 0


def test_negation_does_not_reach_far() -> None:
    # 不 is more than three tokens before 好用 (不/知/道/为/什/么/好用): no flip.
    assert score("不知道为什么好用").score > 0
    assert score("not sure why, but it works great").score > 0


# --- intensity ------------------------------------------------------------------------------


def test_degree_adverbs() -> None:
    assert score("太差了").score < score("差").score < 0
    assert score("非常满意").score > score("满意").score > 0
    assert 0 > score("有点慢").score > score("慢").score
    assert score("extremely slow").score < score("slow").score < 0
    assert score("a bit slow").score > score("slow").score
    assert score("really great").score > score("great").score


def test_hao_as_adverb_and_as_adjective() -> None:
    assert _label("好慢啊") == "negative"  # 好 = very
    assert _label("好") == "positive"  # 好 = good
    assert _label("挺好的") == "positive"
    assert _label("好的") == "neutral"  # acknowledgement


def test_exclamation_marks_intensify() -> None:
    assert score("太差了！！！").score < score("太差了").score < 0
    assert score("great!!!").score > score("great").score > 0


def test_repeated_question_marks_show_impatience() -> None:
    assert score("怎么还没发货？？？").score < score("怎么还没发货").score < 0
    assert score("where is my order???").score < score("where is my order?").score
    assert _label("where is my order?") == "neutral"


def test_repeated_characters_intensify() -> None:
    assert score("好慢慢慢慢").score < score("好慢").score < 0
    assert score("sooooo slow").score < score("so slow").score < 0
    assert score("goooood").score > 0
    assert _label("哈哈哈哈") == "positive"


def test_all_caps_word_in_mixed_case_text_intensifies() -> None:
    assert score("this is TERRIBLE").score < score("this is terrible").score < 0


# --- contrast -------------------------------------------------------------------------------


def test_contrast_clause_after_weighs_more() -> None:
    assert _label("质量不错，但是物流太慢了") == "negative"
    assert _label("物流有点慢，不过质量很好") == "positive"
    assert _label("包装很好，就是有点小") == "negative"
    assert _label("Great product but shipping was slow") == "negative"
    assert _label("shipping was slow, however the quality is excellent") == "positive"
    assert _label("Nice shirt, too small though") == "negative"


def test_concessive_clause_weighs_less() -> None:
    assert _label("虽然贵了点，但是质量很好") == "positive"
    assert _label("Although it's cheap, the quality is bad") == "negative"


def test_sarcasm_turns_praise_negative() -> None:
    assert _label("呵呵，你们的服务真好") == "negative"
    assert _label("oh great, it broke again") == "negative"
    assert _label("🙄 thanks a lot") == "negative"


def test_bidirectional_segmentation() -> None:
    # Forward matching alone would read 还好/吃 ("fine"); the backward reading 还/好吃 wins.
    assert score("比店里买的还好吃").score > score("还行").score
    assert _label("好不好用") == "neutral"  # a question frame, not 好 + 不好用
    assert _label("结不结实") == "neutral"
    assert _label("穿着很舒服了") == "positive"  # 舒服/了, not 舒/服了 ("fed up")


# --- emoji, traditional characters, mixed text -----------------------------------------------


def test_emoji() -> None:
    assert _label("😡") == "negative"
    assert score("😡").strong_negative
    assert _label("👍") == "positive"
    assert _label("收到了👍") == "positive"
    assert _label("还没发货😡😡") == "negative"
    assert _label("❤️❤️") == "positive"  # variation selector stripped
    assert _label("thanks :)") == "positive"
    assert _label("[怒][怒]") == "negative"


def test_traditional_characters() -> None:
    assert score("質量太差了").score == score("质量太差了").score
    assert _label("非常滿意，謝謝") == "positive"
    assert _label("東西壞了") == "negative"
    assert score("你們是騙子").strong_negative


def test_full_width_punctuation_and_letters() -> None:
    assert score("ｇｒｅａｔ！！！").score == score("great!!!").score


def test_mixed_chinese_and_english() -> None:
    assert _label("这个product质量很好") == "positive"
    assert _label("快递太慢了, very disappointed") == "negative"
    assert _label("size有点小 but 质量很好") == "positive"
    assert _label("客服 reply 很快，nice") == "positive"


# --- strong negatives -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["你们就是骗子", "什么垃圾东西", "我要投诉你们", "再不处理就给差评", "我要打12315",
     "信不信我报警", "气死我了", "this is a scam", "I will report you to the BBB",
     "worst store ever", "completely useless", "this is ridiculous!!!", "you people are idiots",
     "what a joke, I want my money back"],
)  # fmt: skip
def test_strong_negative(text: str) -> None:
    result = score(text)
    assert result.label == "negative"
    assert result.strong_negative


@pytest.mark.parametrize(
    "text",
    ["有点慢", "尺码偏小", "颜色和图片有点不一样", "a bit slow", "the box was slightly dented",
     "垃圾袋质量不错", "no complaints", "质量很好"],
)  # fmt: skip
def test_not_strong(text: str) -> None:
    assert not score(text).strong_negative


def test_strong_by_score_alone() -> None:
    result = score("太太太差了！！！非常失望，质量极差")
    assert result.strong_negative


# --- accuracy on the held-out, hand-labelled set ---------------------------------------------


def _load_labelled() -> list[dict[str, Any]]:
    data = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    assert data["version"] == 1
    messages: list[dict[str, Any]] = data["messages"]
    return messages


def _confusion_table(lang: str, rows: list[tuple[str, str]]) -> str:
    counts = Counter(rows)
    correct = sum(n for (gold, pred), n in counts.items() if gold == pred)
    header = "gold \\ predicted"
    lines = [
        f"[{lang}] {len(rows)} messages, accuracy {correct / len(rows):.3f}",
        f"{header:>18}" + "".join(f"{label:>10}" for label in LABELS),
    ]
    for gold in LABELS:
        lines.append(f"{gold:>18}" + "".join(f"{counts[gold, pred]:>10}" for pred in LABELS))
    return "\n".join(lines)


@pytest.mark.skipif(not LABELLED.exists(), reason=f"{LABELLED} is missing")
def test_accuracy_on_labelled_set() -> None:
    messages = _load_labelled()
    by_lang: dict[str, list[tuple[str, str]]] = {}
    strong_hits: Counter[str] = Counter()
    strong_total: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    flagged_right: Counter[str] = Counter()
    for message in messages:
        result = score(message["text"])
        lang = message.get("lang", "?")
        by_lang.setdefault(lang, []).append((message["label"], result.label))
        gold_strong = message["label"] == "negative" and bool(message.get("strong"))
        if gold_strong:
            strong_total[lang] += 1
            strong_hits[lang] += result.strong_negative
        if result.strong_negative:
            flagged[lang] += 1
            flagged_right[lang] += gold_strong

    all_rows = [row for rows in by_lang.values() for row in rows]
    report = ["", "Sentiment scorer on tests/data/sentiment_labelled.yml"]
    for lang in sorted(by_lang):
        report.append(_confusion_table(lang, by_lang[lang]))
        report.append(
            f"[{lang}] strong-negative recall {strong_hits[lang]}/{strong_total[lang]}, "
            f"precision {flagged_right[lang]}/{flagged[lang]}"
        )
    report.append(_confusion_table("all", all_rows))
    total_strong = sum(strong_total.values())
    recall = sum(strong_hits.values()) / total_strong if total_strong else 1.0
    report.append(f"[all] strong-negative recall {recall:.3f} ({total_strong} strong negatives)")
    print("\n".join(report))

    accuracy = sum(gold == pred for gold, pred in all_rows) / len(all_rows)
    assert len(all_rows) >= 200
    assert accuracy >= 0.80
    assert recall >= 0.80
