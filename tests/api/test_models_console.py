"""The models console: ops and admins only, CSRF on every form, metrics next to the active
model's, retrain starts a background job, and only a version that passed the gate can be
activated."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from api.engine import EngineClient, follow_endpoint
from bot.db import session_scope
from bot.models.lifecycle import EngineEndpoint, ModelVersion
from bot.services import lifecycle
from tests.api.test_console import _csrf, accounts, log_in

__all__ = ["accounts"]

GOOD = {
    "zh": {"accuracy": 0.900, "macro_f1": 0.930, "oos_rejection": 0.920},
    "en": {"accuracy": 0.910, "macro_f1": 0.933, "oos_rejection": 0.880},
}
WORSE = {"zh": {**GOOD["zh"], "accuracy": 0.850}, "en": GOOD["en"]}
CORRECTIONS = 'version: "3.1"\nnlu:\n  - intent: order_status\n    examples: |\n      - 包裹呢\n'


def _clear() -> None:
    with session_scope() as s:
        s.execute(delete(EngineEndpoint))
        s.execute(update(ModelVersion).values(baseline_id=None))
        s.execute(delete(ModelVersion))


@pytest.fixture
def versions(app_db: str, tmp_path: Path) -> Iterator[dict[str, int]]:
    """An active model with metrics, a candidate that passed the gate, one that failed, and
    the engine manager's record."""
    _clear()
    ids: dict[str, int] = {}
    with session_scope() as s:
        for name, status, metrics in (
            ("kefu-active0001", "active", GOOD),
            ("kefu-retrain-pass", "gate_passed", GOOD),
            ("kefu-retrain-fail", "gate_failed", WORSE),
        ):
            path = tmp_path / f"{name}.tar.gz"
            path.write_bytes(b"model")
            view = lifecycle.register_model(session=s, model_path=path, metrics=metrics)
            s.execute(update(ModelVersion).where(ModelVersion.id == view.id).values(status=status))
            ids[name] = view.id
        s.execute(
            update(ModelVersion)
            .where(ModelVersion.id == ids["kefu-retrain-fail"])
            .values(
                source="retrain",
                baseline_id=ids["kefu-active0001"],
                gate={"passed": False, "reasons": ["zh accuracy 0.850 < baseline 0.900"]},
            )
        )
        lifecycle.set_engine_state(session=s, state="serving")
        s.execute(
            update(EngineEndpoint).values(
                urls=["http://127.0.0.1:5005"],
                generation=3,
                model_id="kefu-active0001",
                model_version_id=ids["kefu-active0001"],
            )
        )
    yield ids
    _clear()


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(
        lifecycle, "launch_retrain", lambda vid, text, settings: calls.append((vid, text))
    )
    monkeypatch.setattr(lifecycle, "corrections_from_review", lambda session: CORRECTIONS)
    return calls


def test_agents_and_supervisors_are_refused(
    client: TestClient, accounts: dict[str, str], versions: dict[str, int]
) -> None:
    for role in ("agent", "supervisor"):
        client.cookies.clear()
        assert log_in(client, accounts[role]) == 303
        assert 'href="/console/models"' not in client.get("/console/").text
        assert client.get("/console/models").status_code == 403
        assert client.get("/console/models/state").status_code == 403
        token = _csrf(client.get("/console/").text)
        vid = versions["kefu-retrain-pass"]
        posted = client.post(f"/console/models/{vid}/activate", data={"csrf_token": token})
        assert posted.status_code == 403
        assert client.post("/console/models/retrain", data={"csrf_token": token}).status_code == 403
    with session_scope() as s:
        assert lifecycle.pending_activation(session=s) is None


def test_ops_sees_versions_metrics_against_the_active_one_and_the_serving_url(
    client: TestClient, accounts: dict[str, str], versions: dict[str, int]
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    assert 'href="/console/models"' in client.get("/console/").text
    page = client.get("/console/models")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and " onclick=" not in page.text
    html = page.text
    for name in ("kefu-active0001", "kefu-retrain-pass", "kefu-retrain-fail"):
        assert name in html
    assert (
        "http://127.0.0.1:5005" in html and '<td id="engine-generation">3</td>' in html
    )  # URL and generation
    assert "Gate failed 未通过评测" in html and "zh accuracy 0.850 &lt; baseline 0.900" in html
    # The failed candidate's zh accuracy, 0.050 under the active one.
    assert '0.850<br><span class="worse">-0.050</span>' in html
    # One Activate button: the version that passed the gate.
    assert html.count("Activate 启用") == 1
    assert f"/console/models/{versions['kefu-retrain-pass']}/activate" in html
    # Nothing is running: the page does not poll.
    assert "hx-trigger" not in html


def test_activate_needs_csrf_and_a_passed_gate(
    client: TestClient, accounts: dict[str, str], versions: dict[str, int]
) -> None:
    assert log_in(client, accounts["admin"]) == 303
    token = _csrf(client.get("/console/models").text)
    passed, failed = versions["kefu-retrain-pass"], versions["kefu-retrain-fail"]

    assert client.post(f"/console/models/{passed}/activate").status_code == 422
    wrong = client.post(f"/console/models/{passed}/activate", data={"csrf_token": "x"})
    assert wrong.status_code == 422

    refused = client.post(f"/console/models/{failed}/activate", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "only a model that passed the gate can be activated" in refused.text
    active = versions["kefu-active0001"]
    again = client.post(f"/console/models/{active}/activate", data={"csrf_token": token})
    assert again.status_code == 400
    assert (
        client.post("/console/models/99999/activate", data={"csrf_token": token}).status_code == 404
    )
    with session_scope() as s:
        assert lifecycle.pending_activation(session=s) is None

    ok = client.post(
        f"/console/models/{passed}/activate", data={"csrf_token": token}, follow_redirects=False
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/console/models"
    with session_scope() as s:
        pending = lifecycle.pending_activation(session=s)
        assert pending is not None and pending.id == passed
    page = client.get("/console/models").text
    assert "Switching to 正在切换到" in page
    assert 'hx-get="/console/models/state"' in page  # it follows the switch
    fragment = client.get("/console/models/state", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<section id="model-state"')


def test_retrain_starts_a_background_job_once(
    client: TestClient,
    accounts: dict[str, str],
    versions: dict[str, int],
    launched: list[tuple[int, str]],
) -> None:
    assert log_in(client, accounts["ops"]) == 303
    token = _csrf(client.get("/console/models").text)
    assert client.post("/console/models/retrain").status_code == 422
    assert launched == []

    started = client.post(
        "/console/models/retrain", data={"csrf_token": token}, follow_redirects=False
    )
    assert started.status_code == 303
    with session_scope() as s:
        job = next(v for v in lifecycle.list_versions(session=s) if v.status == "training")
    assert launched == [(job.id, CORRECTIONS)]
    assert job.corrections_count == 1

    page = client.get("/console/models").text
    assert job.model_id in page and "Training 训练中" in page
    assert "retrain started with 1 corrected example(s)" in page  # the log so far
    assert re.search(r"<button type=\"submit\" disabled>Retrain with corrections", page)
    assert 'hx-trigger="every 3s"' in page

    twice = client.post("/console/models/retrain", data={"csrf_token": token})
    assert twice.status_code == 400 and "already running" in twice.text
    assert len(launched) == 1


def test_retrain_without_corrections_says_so(
    client: TestClient,
    accounts: dict[str, str],
    versions: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(lifecycle, "launch_retrain", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(lifecycle, "corrections_from_review", lambda session: "")
    assert log_in(client, accounts["ops"]) == 303
    token = _csrf(client.get("/console/models").text)
    refused = client.post("/console/models/retrain", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "there are no reviewed corrections to train with yet" in refused.text
    assert calls == []


# --- the gateway follows the engine manager's record --------------------------------------


async def test_the_gateway_follows_a_live_record_only_and_new_generations_only() -> None:
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.scheme}://{request.url.host}:{request.url.port}")
        return httpx.Response(200, json={"replies": [{"text": "hi"}]})

    engine = EngineClient(
        ["http://127.0.0.1:5005"], deadline=1.0, transport=httpx.MockTransport(handler)
    )
    records: list[tuple[int, list[str], bool] | None] = [
        (7, ["http://127.0.0.1:5006"], False),  # left by a manager that is gone: ignored
        None,
        (8, ["http://127.0.0.1:5006/"], True),  # a live manager switched: followed
        (8, ["http://127.0.0.1:5005"], True),  # same generation: not a switch
    ]
    urls_after: list[list[str]] = []

    async def read() -> tuple[int, list[str], bool] | None:
        urls_after.append(list(engine.urls))
        return records.pop(0) if records else (8, ["http://127.0.0.1:5006"], True)

    task = asyncio.create_task(follow_endpoint(engine, read, interval=0.001))
    while records:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)
    task.cancel()
    assert urls_after[:3] == [["http://127.0.0.1:5005"]] * 3
    assert engine.urls == ["http://127.0.0.1:5006"]
    await engine.turn("c1", "m1", "hi", {})
    assert seen == ["http://127.0.0.1:5006"]
    with pytest.raises(ValueError):
        engine.set_urls([])
    assert engine.urls == ["http://127.0.0.1:5006"]
    await engine.aclose()
