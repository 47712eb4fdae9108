"""A real retrain (``rasa train`` and ``scripts/eval_nlu.py`` in the engine environment) with a
deliberately tiny pipeline — the project's normaliser and jieba tokeniser, one
CountVectorsFeaturizer and DIET for two epochs — whose gate must fail against the shipped
model's held-out figures, and is recorded as gate_failed with the reasons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from bot.db import session_scope
from bot.models.lifecycle import EngineEndpoint, ModelVersion
from bot.services import lifecycle
from bot.settings import PROJECT_ROOT, Settings
from tests.support.stack import find_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TINY_CONFIG = """recipe: default.v1
language: zh
assistant_id: kefu-tiny
pipeline:
  - name: engine.components.TextNormalizer
  - name: JiebaTokenizer
    dictionary_path: data/jieba
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 2
    number_of_transformer_layers: 0
    embedding_dimension: 8
    entity_recognition: false
    random_seed: 7
policies:
  - name: MemoizationPolicy
    max_history: 2
  - name: RulePolicy
"""
CORRECTIONS = """version: "3.1"
nlu:
  - intent: order_status
    examples: |
      - 我买的东西到底发没发
      - any news on my parcel
"""
# The shipped model's figures on the held-out set (make eval; README "Understanding").
BASELINE = {
    "zh": {"accuracy": 0.900, "macro_f1": 0.931, "oos_rejection": 0.922},
    "en": {"accuracy": 0.908, "macro_f1": 0.934, "oos_rejection": 0.883},
}


def _clear() -> None:
    with session_scope() as s:
        s.execute(delete(EngineEndpoint))
        s.execute(update(ModelVersion).values(baseline_id=None))
        s.execute(delete(ModelVersion))


@pytest.fixture
def baseline(app_db: str) -> Iterator[int]:
    _clear()
    with session_scope() as s:
        view = lifecycle.startup_model(session=s, given=find_model())
        s.execute(update(ModelVersion).where(ModelVersion.id == view.id).values(metrics=BASELINE))
    yield view.id
    _clear()


def test_a_tiny_retrain_is_measured_and_fails_the_gate(
    baseline: int, app_db: str, tmp_path: Path
) -> None:
    config = tmp_path / "tiny-config.yml"
    config.write_text(TINY_CONFIG)
    settings = Settings(
        environment="test",
        database_url=app_db,
        var_dir=tmp_path / "var",
        models_dir=tmp_path / "models",
    )
    version = lifecycle.retrain(
        settings=settings, corrections=lambda session: CORRECTIONS, config=config
    )

    assert version.status == "gate_failed", version.log_tail
    assert version.source == "retrain" and version.corrections_count == 2
    assert version.baseline_id == baseline
    model = lifecycle.resolve(version.model_path)
    assert model.exists() and model.parent == tmp_path / "models"
    assert version.metrics is not None and set(version.metrics) == {"zh", "en"}
    for language in ("zh", "en"):
        assert set(version.metrics[language]) == set(lifecycle.METRICS)
    gate = version.gate
    assert gate is not None and gate["passed"] is False and gate["baseline_id"] == baseline
    worse = [
        (lang, metric)
        for lang in ("zh", "en")
        for metric in lifecycle.METRICS
        if version.metrics[lang][metric] < BASELINE[lang][metric]
    ]
    assert worse, version.metrics  # two epochs of a tiny model are worse somewhere
    for lang, metric in worse:
        assert any(r.startswith(f"{lang} {metric} ") for r in gate["reasons"]), gate["reasons"]
    assert "trained in" in version.log_tail and "gate against" in version.log_tail
    log = settings.var_dir / "lifecycle" / f"{version.model_id}.log"
    assert "rasa" in log.read_text(errors="replace")
    report = json.loads(log.with_suffix(".eval.json").read_text())
    assert "problems" in report and report["targets"]["accuracy"] == 0.85
    # The project's own files were not touched by the retrain.
    assert not (PROJECT_ROOT / "data" / "nlu" / "corrections.yml").exists()
    with session_scope() as s:
        with pytest.raises(lifecycle.InvalidInput):
            lifecycle.request_activation(session=s, version_id=version.id)
        assert lifecycle.active_version(session=s).id == baseline  # type: ignore[union-attr]
