"""Custom NLU components loaded by Rasa (engine environment only; imports nothing from bot/).

- ``engine.components.TextNormalizer`` — first in the pipeline: NFKC, traditional → simplified,
  white space; on training data and on every message, so ``rasa train``, ``rasa test``,
  ``rasa shell`` and the gateway all see the same text.
- ``engine.components.LanguageDetector`` — after the classifiers: adds a ``language`` entity
  ("zh"/"en") that fills the ``language`` slot, which selects response variations and never
  influences the conversation. Text without a language signal (an order number, an emoji)
  falls back to the gateway's hint in the message metadata, else leaves the slot alone.
- ``engine.components.BareNumberIsInform`` — a message that is only a number of 4+ digits
  (an order number, phone digits) is ``inform``, whatever the classifier guessed.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from engine.language import detect_language
from engine.textnorm import normalize

LANGUAGE_ENTITY = "language"


class _Stateless(GraphComponent):
    """A component with no configuration and nothing to train or persist."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls()


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class TextNormalizer(_Stateless):
    """Normalises message text in place (length-preserving, so entity offsets hold)."""

    @staticmethod
    def _normalize(message: Message) -> None:
        text = message.get(TEXT)
        if isinstance(text, str) and text:
            normalized = normalize(text)
            if normalized.startswith("/") and not text.startswith("/"):
                # The gateway sends shopper text that starts with "/" as a full-width slash
                # so it is never read as an intent; folding it back would undo that.
                normalized = text[0] + normalized[1:]
            message.set(TEXT, normalized)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._normalize(example)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._normalize(message)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(_Stateless):
    """Adds the ``language`` entity detected from the text (or the metadata hint)."""

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            language: str | None = detect_language(text)
            if language is None:
                metadata = message.get("metadata") or {}
                hint = metadata.get("language") if isinstance(metadata, dict) else None
                language = hint if hint in ("zh", "en") else None
            if language is None:
                continue
            entities = [e for e in message.get(ENTITIES, []) if e.get("entity") != LANGUAGE_ENTITY]
            entities.append(
                {
                    "entity": LANGUAGE_ENTITY,
                    "value": language,
                    "start": 0,
                    "end": len(text),
                    "confidence": 1.0,
                    "extractor": self.__class__.__name__,
                }
            )
            message.set(ENTITIES, entities, add_to_output=True)
        return messages


BARE_NUMBER = re.compile(r"^[\s#:：,，.。-]*\d[\d\s-]{3,}[\s.。]*$")
INFORM = "inform"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class BareNumberIsInform(_Stateless):
    """A shopper who sends just a number is answering a question (order number, the last
    four digits of a phone). Classifiers trained on words have little to go on there."""

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            digits = sum(ch.isdigit() for ch in text)
            if digits < 4 or not BARE_NUMBER.match(text):
                continue
            message.set(
                INTENT, {INTENT_NAME_KEY: INFORM, PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True
            )
            ranking = [
                r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != INFORM
            ]
            message.set(
                INTENT_RANKING_KEY,
                [{INTENT_NAME_KEY: INFORM, PREDICTED_CONFIDENCE_KEY: 1.0}, *ranking],
                add_to_output=True,
            )
        return messages
