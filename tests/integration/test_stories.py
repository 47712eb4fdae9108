"""The Rasa test stories (tests/stories/) against the trained model:
`rasa test core --fail-on-prediction-errors`, so a wrong prediction fails the suite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bot.settings import PROJECT_ROOT
from tests.support.stack import ENGINE_BIN, find_model


def test_every_journey_story_predicts_as_written(tmp_path: Path) -> None:
    model = find_model()
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run(
        [
            str(ENGINE_BIN / "rasa"),
            "test",
            "core",
            "--stories",
            str(PROJECT_ROOT / "tests" / "stories"),
            "--model",
            str(model),
            "--fail-on-prediction-errors",
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    failed = out / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else ""
    assert proc.returncode == 0, (
        f"rasa test core failed ({model.name}):\n{details}\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
