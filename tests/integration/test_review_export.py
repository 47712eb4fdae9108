"""The corrections round trip: turns labelled in review, exported by
``corrected_examples_yaml``, dropped into a copy of data/nlu/ — ``rasa data validate``
passes with the project's domain and data and no new warning, and the exported file alone
trains with a tiny config (the project's normaliser and jieba tokenizer, count vectors,
DIET for one epoch). The exported test stories are read by Rasa's own story reader."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.db import session_scope
from bot.models import Message
from bot.services import review as rv
from bot.services import review_export as rx
from tests.bot.test_review import BASE, build_review_set

ROOT = Path(__file__).resolve().parents[2]
RASA = ROOT / ".venv-engine" / "bin" / "rasa"
TINY_CONFIG = """\
recipe: default.v1
language: zh
assistant_id: review-export-test
pipeline:
  - name: engine.components.TextNormalizer
  - name: JiebaTokenizer
    dictionary_path: data/jieba
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 1
    number_of_transformer_layers: 0
    embedding_dimension: 16
    random_seed: 1
policies: []
"""
EXTRA = [  # (text, NLU intent, corrected intent or None to confirm, annotated correction)
    ("我要一件蓝色的衬衫", "product_question", "product_recommendation",
     '我要一件[蓝色]{"entity": "colour", "value": "blue"}的[衬衫](product)'),
    ("Do you have this in size XL", "product_question", None, None),
    ("能给我开张公司抬头的发票吗 谢啦", "invoice", None, None),
    ("my jacket arrived with a hole, this is unacceptable", "return_refund", "complaint", None),
    ("订单[123]怎么还没到", "order_status", None, None),  # brackets: left out
]  # fmt: skip


def _labelled_export(app_db: str) -> tuple[str, str, rx.ExportReport]:
    with session_scope() as session:
        rs = build_review_set(session)
        cid = rs.ids["zh5"]
        for n, (body, intent, corrected, annotated) in enumerate(EXTRA):
            message = Message(
                uid=f"x{rs.tag}-{n}", conversation_id=cid, role="shopper", text=body,
                intent=intent, confidence=0.5, entities=[], created_at=BASE,
            )  # fmt: skip
            session.add(message)
            session.flush()
            rv.label_turn(
                session=session, message_id=message.id,
                status="relabelled" if corrected else "correct",
                intent=corrected, annotated=annotated, reviewer_id=None,
            )  # fmt: skip
        for key in (("zh1", 0), ("zh1", 2), ("en2", 0), ("en4", 1)):
            rv.label_turn(
                session=session, message_id=rs.turns[key], status="correct", reviewer_id=None
            )
        rv.label_turn(
            session=session, message_id=rs.turns[("en2", 2)], status="relabelled",
            intent="out_of_scope", reviewer_id=None,
        )  # fmt: skip
        report = rx.ExportReport()
        nlu = rx.corrected_examples_yaml(session, report=report)
        stories = rx.conversation_test_stories(session, list(rs.ids.values()))
    return nlu, stories, report


def _project_copy(where: Path) -> None:
    shutil.copy(ROOT / "domain.yml", where / "domain.yml")
    shutil.copytree(ROOT / "data", where / "data")
    (where / "config.yml").write_text(TINY_CONFIG, encoding="utf-8")


def _rasa(where: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RASA), *args],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _unexpected_warnings(output: str) -> list[str]:
    spec = importlib.util.spec_from_file_location(
        "validate_data", ROOT / "scripts" / "validate_data.py"
    )
    assert spec and spec.loader
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    allowed = check.used_outside_stories()
    problems = []
    for line in output.splitlines():
        found = check.WARNING.search(line)
        if not found:
            continue
        unused = check.UNUSED.search(found.group(1))
        if (unused and unused.group(1) in allowed) or check.EXTERNAL.search(found.group(1)):
            continue
        problems.append(found.group(1))
    return problems


# `rasa data validate` over the whole project and a training run: about a minute on an idle
# two-core machine, several when it is shared.
@pytest.mark.timeout(900)
def test_exported_corrections_validate_and_train(app_db: str, tmp_path: Path) -> None:
    nlu, stories, report = _labelled_export(app_db)
    data = yaml.safe_load(nlu)
    intents = {b["intent"] for b in data["nlu"]}
    assert {"product_recommendation", "complaint", "invoice", "out_of_scope"} <= intents
    assert report.personal_data == 1  # the phone number in en4
    assert report.unplaceable == 1  # the brackets
    assert '[蓝色]{"entity": "colour", "value": "blue"}' in nlu

    # Dropped into a copy of the project's data, `rasa data validate` passes with no
    # warning but those the project's own check (scripts/validate_data.py) accepts.
    dropped = tmp_path / "dropped"
    dropped.mkdir()
    _project_copy(dropped)
    (dropped / "data" / "nlu" / "review_corrections.yml").write_text(nlu, encoding="utf-8")
    validated = _rasa(dropped, "data", "validate")
    assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr[-3000:]
    assert _unexpected_warnings(validated.stdout + validated.stderr) == []

    # The exported file alone trains (NLU only, one epoch).
    alone = tmp_path / "alone"
    (alone / "data" / "nlu").mkdir(parents=True)
    shutil.copytree(ROOT / "data" / "jieba", alone / "data" / "jieba")
    shutil.copy(ROOT / "domain.yml", alone / "domain.yml")
    (alone / "config.yml").write_text(TINY_CONFIG, encoding="utf-8")
    (alone / "data" / "nlu" / "review_corrections.yml").write_text(nlu, encoding="utf-8")
    trained = _rasa(
        alone, "train", "nlu", "--nlu", "data/nlu", "--config", "config.yml",
        "--out", "models", "--fixed-model-name", "review",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert (alone / "models" / "review.tar.gz").stat().st_size > 10_000

    # The test stories parse with Rasa's own reader against the domain.
    story_file = tmp_path / "review_stories.yml"
    story_file.write_text(stories, encoding="utf-8")
    check = subprocess.run(
        [
            str(ROOT / ".venv-engine" / "bin" / "python"), "-c",
            "import sys\n"
            "from rasa.shared.core.domain import Domain\n"
            "from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader\n"
            "steps = YAMLStoryReader(Domain.load(sys.argv[1])).read_from_file(sys.argv[2])\n"
            "print(len(steps))\n",
            str(ROOT / "domain.yml"), str(story_file),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr[-3000:]
    assert int(check.stdout.strip().splitlines()[-1]) >= 4
