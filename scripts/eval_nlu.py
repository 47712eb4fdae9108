"""Measure understanding on the held-out set (tests/nlu_heldout/, never trained on).

Per language: in-scope accuracy, macro-F1 over the in-scope intents, per-intent precision /
recall / F1, the out-of-scope rejection rate (out_of_scope or nlu_fallback), the most
frequent confusion pairs, and the fallback threshold curve (simulated from each message's
ranking, so one pass over the model serves every threshold). Exits 1 below the targets.

Run with the engine environment: ``make eval`` (trains first if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "nlu_heldout"
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
CHITCHAT = {"greet", "goodbye", "thank", "affirm", "deny", OUT_OF_SCOPE}
TARGETS = {"accuracy": 0.85, "macro_f1": 0.88, "service_f1": 0.75, "oos_rejection": 0.85}
THRESHOLDS = [round(0.20 + 0.05 * i, 2) for i in range(13)]


@dataclass
class Parsed:
    language: str
    text: str
    gold: str
    predicted: str
    ranking: list[tuple[str, float]]


def load_heldout() -> list[tuple[str, str, str]]:
    """(language, intent, text) for every held-out example."""
    rows = []
    for path in sorted(HELDOUT.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for block in data.get("nlu", []):
            for line in str(block.get("examples", "")).splitlines():
                text = line.strip()
                if text.startswith("- "):
                    rows.append((path.stem, block["intent"], text[2:].strip()))
    return rows


async def parse_all(model: Path, rows: list[tuple[str, str, str]]) -> list[Parsed]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # Rasa's debug lines would print every message

    agent = Agent.load(str(model))
    parsed = []
    for language, gold, text in rows:
        result = await agent.parse_message(text)
        ranking = [
            (r["name"], float(r["confidence"]))
            for r in result.get("intent_ranking", [])
            if r["name"] != FALLBACK
        ]
        parsed.append(Parsed(language, text, gold, result["intent"]["name"], ranking))
    return parsed


def fallback_config() -> tuple[float, float]:
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    for component in config["pipeline"]:
        if component["name"] == "FallbackClassifier":
            return float(component.get("threshold", 0.3)), float(
                component.get("ambiguity_threshold", 0.1)
            )
    return 0.0, 0.0


def simulate(p: Parsed, threshold: float, ambiguity: float) -> str:
    """The intent the pipeline would give at ``threshold`` (FallbackClassifier's rule)."""
    if not p.ranking:
        return FALLBACK
    top, confidence = p.ranking[0]
    second = p.ranking[1][1] if len(p.ranking) > 1 else 0.0
    if confidence < threshold or confidence - second < ambiguity:
        return FALLBACK
    return top


def scores(pairs: list[tuple[str, str]], intents: list[str]) -> dict[str, Any]:
    """Metrics over (gold, predicted) pairs; ``intents`` are the in-scope intents."""
    in_scope = [(g, p) for g, p in pairs if g != OUT_OF_SCOPE]
    oos = [(g, p) for g, p in pairs if g == OUT_OF_SCOPE]
    per_intent = {}
    for intent in intents:
        tp = sum(1 for g, p in pairs if g == intent and p == intent)
        fp = sum(1 for g, p in pairs if g != intent and p == intent)
        fn = sum(1 for g, p in pairs if g == intent and p != intent)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[intent] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": tp + fn,
        }
    return {
        "accuracy": sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else 0.0,
        "macro_f1": sum(v["f1"] for v in per_intent.values()) / len(per_intent),
        "oos_rejection": (
            sum(p in (OUT_OF_SCOPE, FALLBACK) for _, p in oos) / len(oos) if oos else 0.0
        ),
        "per_intent": per_intent,
        "confusions": Counter((g, p) for g, p in pairs if g != p).most_common(10),
    }


def is_noise(text: str) -> bool:
    """Gibberish, a single character, emoji or digits: nothing a shopper says in words."""
    stripped = "".join(text.split())
    letters = [ch for ch in stripped if ch.isalpha()]
    return (
        len(stripped) <= 2
        or not letters
        or len(set(stripped)) <= 2
        or (stripped.isascii() and stripped.isalpha() and not any(v in stripped for v in "aeiou"))
    )


def failures(result: dict[str, Any], parsed: list[Parsed]) -> list[str]:
    problems = []
    # Gibberish, single characters and emoji must never be greeted back.
    greeted = [
        p.text
        for p in parsed
        if p.gold == OUT_OF_SCOPE and p.predicted == "greet" and is_noise(p.text)
    ]
    if greeted:
        problems.append(f"out-of-scope messages taken for greet: {greeted}")
    for key in ("accuracy", "macro_f1", "oos_rejection"):
        if result[key] < TARGETS[key]:
            problems.append(f"{key} {result[key]:.3f} < {TARGETS[key]}")
    for intent, v in result["per_intent"].items():
        if intent not in CHITCHAT and v["f1"] < TARGETS["service_f1"]:
            problems.append(f"{intent} F1 {v['f1']:.3f} < {TARGETS['service_f1']}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "nlu_eval.json")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    rows = load_heldout()
    parsed = asyncio.run(parse_all(args.model, rows))
    threshold, ambiguity = fallback_config()
    intents = sorted({g for _, g, _ in rows} - {OUT_OF_SCOPE})
    report: dict[str, Any] = {
        "model": args.model.name,
        "threshold": threshold,
        "ambiguity_threshold": ambiguity,
        "languages": {},
    }
    problems: list[str] = []

    for language in sorted({p.language for p in parsed}):
        mine = [p for p in parsed if p.language == language]
        result = scores([(p.gold, p.predicted) for p in mine], intents)
        curve = []
        for t in THRESHOLDS:
            s = scores([(p.gold, simulate(p, t, ambiguity)) for p in mine], intents)
            curve.append(
                {
                    "threshold": t,
                    "accuracy": s["accuracy"],
                    "macro_f1": s["macro_f1"],
                    "oos_rejection": s["oos_rejection"],
                }
            )
        report["languages"][language] = {**result, "curve": curve}
        problems += [f"{language}: {p}" for p in failures(result, mine)]

        print(f"\n== {language}: {len(mine)} held-out messages, threshold {threshold}")
        print(
            f"   in-scope accuracy {result['accuracy']:.3f}   macro-F1 {result['macro_f1']:.3f}"
            f"   out-of-scope rejection {result['oos_rejection']:.3f}"
        )
        print(f"   {'intent':<24}{'P':>6}{'R':>6}{'F1':>6}{'n':>5}")
        for intent, v in sorted(result["per_intent"].items(), key=lambda kv: kv[1]["f1"]):
            print(
                f"   {intent:<24}{v['precision']:6.2f}{v['recall']:6.2f}{v['f1']:6.2f}"
                f"{v['support']:5d}"
            )
        print("   most frequent confusions (gold -> predicted):")
        for (gold, predicted), n in result["confusions"]:
            print(f"     {n:3d}  {gold} -> {predicted}")
        print("   threshold curve:  t     acc   macroF1  oos-rej")
        for point in curve:
            mark = " <" if abs(point["threshold"] - threshold) < 1e-9 else ""
            print(
                f"                   {point['threshold']:.2f}  {point['accuracy']:.3f}"
                f"  {point['macro_f1']:.3f}    {point['oos_rejection']:.3f}{mark}"
            )

    # Machine-readable verdict for the model lifecycle's gate (bot/services/lifecycle.py).
    report["targets"] = TARGETS
    report["problems"] = problems
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    print(f"\nwritten {os.path.relpath(args.out, ROOT)}")
    if problems:
        print("BELOW TARGET:\n  " + "\n  ".join(problems))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
