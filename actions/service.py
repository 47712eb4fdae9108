"""Complaints (empathise → own it → resolve, 共情→认责→解决, recorded and offered a person)
and low-confidence messages (a clarifying question, then a person)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import conversation_turn, in_session, language, latest_text, pending
from bot.labels import LABELS, label
from bot.services.outcomes import record_complaint

FALLBACK = "nlu_fallback"


def handoff(reason: str) -> dict[str, Any]:
    """The custom payload that asks the gateway for a person (DESIGN.md)."""
    return {"kefu": {"handoff": reason}}


class ActionHandleComplaint(Action):
    def name(self) -> str:
        return "action_handle_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        turn = conversation_turn(tracker)
        text = latest_text(tracker)
        if turn is not None:
            await in_session(lambda s: record_complaint(session=s, turn=turn, text=text))
        dispatcher.utter_message(response="utter_complaint_empathise")
        dispatcher.utter_message(
            response="utter_complaint_resolve", json_message=handoff("complaint")
        )
        return pending(None)


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the latest user messages in a row fell below the confidence threshold."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent != FALLBACK:
            break
        count += 1
    return count


def likeliest_topics(tracker: Tracker, n: int = 2) -> list[str]:
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    topics = [
        r.get("name")
        for r in ranking
        if r.get("name") in LABELS["topic"] and r.get("name") != "human_agent"
    ]
    return [str(t) for t in topics[:n]]


class ActionClarifyLowConfidence(Action):
    def name(self) -> str:
        return "action_clarify_low_confidence"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        lang = language(tracker)
        if consecutive_fallbacks(tracker) >= 2:
            dispatcher.utter_message(
                response="utter_fallback_handoff", json_message=handoff("fallback")
            )
            return pending(None)
        topics = likeliest_topics(tracker)
        buttons = [{"title": label("topic", t, lang), "payload": f"/{t}"} for t in topics]
        buttons.append({"title": label("topic", "human_agent", lang), "payload": "/human_agent"})
        dispatcher.utter_message(
            response="utter_clarify" if topics else "utter_ask_rephrase", buttons=buttons
        )
        return pending(None)
