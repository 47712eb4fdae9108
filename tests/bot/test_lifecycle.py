"""The model lifecycle on SQLite and PostgreSQL: the gate on known metrics, the version
state machine, the engine endpoint record, and a whole retrain with a fake trainer and
evaluator (the real `rasa train` runs in tests/integration/test_retrain_gate.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.engine_manager import LOADING_NICE, EngineManager, StartFailed
from bot.errors import InvalidInput
from bot.models.lifecycle import EngineEndpoint, ModelVersion
from bot.services import lifecycle as lc
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import FIXED_NOW, fixed_clock

GOOD = {
    "zh": {"accuracy": 0.90, "macro_f1": 0.93, "oos_rejection": 0.92},
    "en": {"accuracy": 0.91, "macro_f1": 0.93, "oos_rejection": 0.88},
}
CORRECTIONS = """version: "3.1"
nlu:
  - intent: order_status
    examples: |
      - 我买的东西怎么还没动静
      - where has my parcel got to
  - intent: return_request
    examples: |
      - 这件不合身想退
"""


def _with(metrics: dict[str, dict[str, float]], language: str, **changes: float) -> Any:
    copy = json.loads(json.dumps(metrics))
    copy[language].update(changes)
    return copy


# --- the gate -----------------------------------------------------------------------------


def test_gate_passes_identical_and_better_metrics() -> None:
    assert lc.gate(GOOD, GOOD).passed
    better = _with(GOOD, "en", accuracy=0.95)
    verdict = lc.gate(better, GOOD, baseline_id=3)
    assert verdict.passed and verdict.reasons == [] and verdict.to_dict()["baseline_id"] == 3


def test_gate_fails_a_regression_in_one_language_even_if_the_other_improves() -> None:
    candidate = _with(_with(GOOD, "en", accuracy=0.97, macro_f1=0.96), "zh", macro_f1=0.925)
    verdict = lc.gate(candidate, GOOD)
    assert not verdict.passed
    assert verdict.reasons == ["zh macro_f1 0.925 < baseline 0.930"]


def test_gate_tolerance_allows_small_drops_only() -> None:
    small = _with(GOOD, "zh", accuracy=0.89)  # −0.01
    large = _with(GOOD, "zh", accuracy=0.87)  # −0.03
    assert not lc.gate(small, GOOD).passed  # the default: no regression at all
    assert lc.gate(small, GOOD, tolerance=0.02).passed
    verdict = lc.gate(large, GOOD, tolerance=0.02)
    assert not verdict.passed and verdict.reasons == ["zh accuracy 0.870 < baseline 0.900 − 0.020"]
    with pytest.raises(InvalidInput):
        lc.gate(GOOD, GOOD, tolerance=-0.1)


def test_gate_fails_a_language_not_measured_and_the_eval_s_own_targets() -> None:
    only_zh = {"zh": GOOD["zh"]}
    assert lc.gate(only_zh, GOOD).reasons == ["en: not measured"]
    verdict = lc.gate(GOOD, GOOD, eval_problems=["zh: return_request F1 0.700 < 0.75"])
    assert not verdict.passed
    assert verdict.reasons == ["below target: zh: return_request F1 0.700 < 0.75"]
    # No baseline (nothing measured yet): only the targets count.
    assert lc.gate(GOOD, None).passed
    assert not lc.gate({}, None).passed


def test_parse_eval_report_reads_the_eval_script_s_json() -> None:
    report = {
        "model": "kefu-x.tar.gz",
        "languages": {
            lang: {**values, "per_intent": {}, "confusions": [], "curve": []}
            for lang, values in GOOD.items()
        },
        "problems": ["en: oos_rejection 0.800 < 0.85"],
    }
    result = lc.parse_eval_report(report)
    assert result.metrics == GOOD
    assert result.problems == ["en: oos_rejection 0.800 < 0.85"]
    with pytest.raises(lc.LifecycleError):
        lc.parse_eval_report({"languages": {}})


def test_count_examples_refuses_what_is_not_nlu_yaml() -> None:
    assert lc.count_examples(CORRECTIONS) == 3
    assert lc.count_examples("") == 0
    with pytest.raises(InvalidInput, match="not valid YAML"):
        lc.count_examples("nlu: [unclosed")
    with pytest.raises(InvalidInput, match="no nlu"):
        lc.count_examples("- just a list")
    with pytest.raises(InvalidInput, match="needs an intent"):
        lc.count_examples("nlu:\n  - examples: |\n      - hi\n")


# --- versions and the endpoint record -----------------------------------------------------


def _model_file(directory: Path, name: str) -> Path:
    path = directory / f"{name}.tar.gz"
    path.write_bytes(b"not really a model")
    return path


def _unit(session: Session) -> Callable[[Callable[[Session], Any]], Any]:
    def unit(work: Callable[[Session], Any]) -> Any:
        result = work(session)
        session.flush()
        return result

    return unit


def _gate_passed(session: Session, path: Path) -> lc.VersionView:
    version = lc.register_model(session=session, model_path=path, metrics=GOOD, clock=fixed_clock)
    row = session.get(ModelVersion, version.id)
    assert row is not None
    row.status = "gate_passed"
    session.flush()
    return lc.get_version(session=session, version_id=version.id)


def test_make_run_with_no_rows_serves_the_makefile_model(session: Session, tmp_path: Path) -> None:
    first = _model_file(tmp_path, "kefu-aaaaaaaaaaaa")
    served = lc.startup_model(session=session, given=first, clock=fixed_clock)
    assert (served.model_id, served.source, served.status) == (
        "kefu-aaaaaaaaaaaa",
        "make_train",
        "active",
    )
    assert served.activated_at == FIXED_NOW
    # Restarting with the same model changes nothing.
    again = lc.startup_model(session=session, given=first, clock=fixed_clock)
    assert again.id == served.id and again.status == "active"
    # A model `make train` built from changed data takes over; the old one retires.
    second = _model_file(tmp_path, "kefu-bbbbbbbbbbbb")
    newer = lc.startup_model(session=session, given=second, clock=fixed_clock)
    assert newer.model_id == "kefu-bbbbbbbbbbbb" and newer.status == "active"
    assert lc.get_version(session=session, version_id=served.id).status == "retired"
    # Without a model given, the active version serves.
    assert lc.startup_model(session=session, given=None).id == newer.id


def test_a_retrained_active_model_keeps_serving_over_a_known_makefile_model(
    session: Session, tmp_path: Path
) -> None:
    base = _model_file(tmp_path, "kefu-cccccccccccc")
    lc.startup_model(session=session, given=base, clock=fixed_clock)
    candidate = _gate_passed(session, _model_file(tmp_path, "kefu-retrain-1"))
    lc.publish(session=session, urls=["http://127.0.0.1:5006"], version_id=candidate.id, process={})
    # `make run` again with the same Makefile model: the activated retrain keeps serving.
    assert lc.startup_model(session=session, given=base).id == candidate.id


def test_activation_needs_a_passed_gate(session: Session, tmp_path: Path) -> None:
    trained = lc.register_model(session=session, model_path=_model_file(tmp_path, "kefu-t1"))
    with pytest.raises(InvalidInput, match="only a model that passed the gate"):
        lc.request_activation(session=session, version_id=trained.id)
    failed_row = session.get(ModelVersion, trained.id)
    assert failed_row is not None
    failed_row.status = "gate_failed"
    with pytest.raises(InvalidInput, match="gate_failed"):
        lc.request_activation(session=session, version_id=trained.id)
    missing = _gate_passed(session, tmp_path / "kefu-gone.tar.gz")
    with pytest.raises(InvalidInput, match=r"file .* is missing"):
        lc.request_activation(session=session, version_id=missing.id)
    # Status changes that skip the gate are refused too.
    with pytest.raises(InvalidInput, match="cannot become active"):
        lc._transition(failed_row, "active")


def test_swap_publishes_a_new_generation_and_retires_the_old_version(
    session: Session, tmp_path: Path
) -> None:
    old = lc.startup_model(
        session=session, given=_model_file(tmp_path, "kefu-dddddddddddd"), clock=fixed_clock
    )
    first = lc.publish(
        session=session, urls=["http://127.0.0.1:5005"], version_id=old.id, process={"rasa": 1}
    )
    new = _gate_passed(session, _model_file(tmp_path, "kefu-retrain-2"))
    other = _gate_passed(session, _model_file(tmp_path, "kefu-retrain-3"))

    lc.request_activation(session=session, version_id=new.id, clock=fixed_clock)
    assert lc.pending_activation(session=session) == lc.get_version(
        session=session, version_id=new.id
    )
    with pytest.raises(InvalidInput, match="another activation is in progress"):
        lc.request_activation(session=session, version_id=other.id)

    generation = lc.publish(
        session=session,
        urls=["http://127.0.0.1:5006/"],
        version_id=new.id,
        process={"rasa": 2, "port": 5006},
    )
    assert generation == first + 1
    endpoint = lc.current_endpoint(session=session)
    assert endpoint is not None
    assert endpoint.urls == ["http://127.0.0.1:5006/"]
    assert endpoint.model_id == "kefu-retrain-2" and endpoint.requested_version_id is None
    assert lc.pending_activation(session=session) is None
    assert lc.get_version(session=session, version_id=new.id).status == "active"
    retired = lc.get_version(session=session, version_id=old.id)
    assert retired.status == "retired" and retired.retired_at is not None
    assert "replaced by kefu-retrain-2" in retired.log_tail
    assert lc.active_version(session=session) == lc.get_version(session=session, version_id=new.id)


def test_a_failed_activation_changes_nothing_but_is_recorded(
    session: Session, tmp_path: Path
) -> None:
    old = lc.startup_model(session=session, given=_model_file(tmp_path, "kefu-eeeeeeeeeeee"))
    generation = lc.publish(
        session=session, urls=["http://127.0.0.1:5005"], version_id=old.id, process={}
    )
    new = _gate_passed(session, _model_file(tmp_path, "kefu-retrain-4"))
    lc.request_activation(session=session, version_id=new.id)
    lc.fail_activation(session=session, version_id=new.id, reason="rasa not ready after 240 s")
    endpoint = lc.current_endpoint(session=session)
    assert endpoint is not None
    assert (endpoint.generation, endpoint.urls) == (generation, ["http://127.0.0.1:5005"])
    assert endpoint.requested_version_id is None and endpoint.state == "serving"
    assert "failed: rasa not ready" in endpoint.message
    after = lc.get_version(session=session, version_id=new.id)
    assert after.status == "gate_passed"  # may be tried again
    assert "activation failed: rasa not ready after 240 s" in after.log_tail
    assert lc.active_version(session=session) == lc.get_version(session=session, version_id=old.id)


def test_endpoint_liveness_follows_the_heartbeat(session: Session) -> None:
    lc.set_engine_state(session=session, state="starting", clock=fixed_clock)
    endpoint = lc.current_endpoint(session=session)
    assert endpoint is not None and endpoint.heartbeat_at == FIXED_NOW
    assert endpoint.is_live(FIXED_NOW + timedelta(seconds=10), max_age=15)
    assert not endpoint.is_live(FIXED_NOW + timedelta(seconds=16), max_age=15)


# --- a whole retrain with a fake trainer --------------------------------------------------


class FakeTrainer:
    def __init__(self, out_dir: Path, *, fail: bool = False) -> None:
        self.out_dir = out_dir
        self.fail = fail
        self.seen: dict[str, Any] = {}

    def __call__(
        self,
        workdir: Path,
        *,
        settings: Settings,
        model_name: str,
        log: Path,
        progress: Callable[[str], None] | None = None,
    ) -> Path:
        self.seen = {
            "files": sorted(p.name for p in workdir.iterdir()),
            "corrections": (workdir / "data" / "nlu" / "corrections.yml").read_text("utf-8"),
            "config": (workdir / "config.yml").read_text("utf-8"),
            "domain_same": (workdir / "domain.yml").read_bytes()
            == (PROJECT_ROOT / "domain.yml").read_bytes(),
            "jieba": (workdir / "data" / "jieba").is_dir(),
        }
        if progress is not None:
            progress("Epochs: 100%|██████████| 40/40")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("training output\nlast line of rasa train\n")
        if self.fail:
            raise lc.LifecycleError("rasa train failed (exit 1)")
        return _model_file(self.out_dir, model_name)


def _evaluator(metrics: dict[str, Any], problems: list[str] | None = None) -> lc.Evaluator:
    calls: list[Path] = []

    def evaluate(model: Path, **_: Any) -> lc.EvalResult:
        calls.append(model)
        return lc.EvalResult(metrics=metrics, problems=problems or [])

    evaluate.calls = calls  # type: ignore[attr-defined]
    return evaluate


@pytest.fixture
def lc_settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url="sqlite://",
        var_dir=tmp_path / "var",
        models_dir=tmp_path / "models",
    )


def _active_baseline(session: Session, tmp_path: Path) -> lc.VersionView:
    base = lc.startup_model(session=session, given=_model_file(tmp_path, "kefu-ffffffffffff"))
    row = session.get(ModelVersion, base.id)
    assert row is not None
    row.metrics = GOOD
    session.flush()
    return base


def test_retrain_trains_on_the_project_data_plus_corrections_and_passes_an_equal_gate(
    session: Session, tmp_path: Path, lc_settings: Settings
) -> None:
    base = _active_baseline(session, tmp_path)
    trainer = FakeTrainer(tmp_path)
    version = lc.retrain(
        settings=lc_settings,
        unit=_unit(session),
        corrections=lambda s: CORRECTIONS,
        trainer=trainer,
        evaluator=_evaluator(GOOD),
        clock=fixed_clock,
    )
    assert trainer.seen["files"] == ["config.yml", "data", "domain.yml"]
    assert trainer.seen["corrections"] == CORRECTIONS
    assert trainer.seen["config"] == (PROJECT_ROOT / "config.yml").read_text("utf-8")
    assert trainer.seen["domain_same"] and trainer.seen["jieba"]
    assert version.status == "gate_passed" and version.source == "retrain"
    assert version.corrections_count == 3
    assert version.baseline_id == base.id and version.metrics == GOOD
    assert version.gate is not None and version.gate["passed"] and version.gate["reasons"] == []
    assert version.model_path.endswith(f"{version.model_id}.tar.gz")
    assert "Epochs: 100%" in version.log_tail and "gate against kefu-ffffffffffff passed" in (
        version.log_tail
    )
    # It passed: it may now be activated.
    lc.request_activation(session=session, version_id=version.id)


def test_retrain_worse_in_one_language_is_gate_failed(
    session: Session, tmp_path: Path, lc_settings: Settings
) -> None:
    _active_baseline(session, tmp_path)
    worse = _with(GOOD, "en", oos_rejection=0.80)
    version = lc.retrain(
        settings=lc_settings,
        unit=_unit(session),
        corrections=lambda s: CORRECTIONS,
        trainer=FakeTrainer(tmp_path),
        evaluator=_evaluator(worse, ["en: oos_rejection 0.800 < 0.85"]),
    )
    assert version.status == "gate_failed"
    assert version.gate is not None and version.gate["reasons"] == [
        "en oos_rejection 0.800 < baseline 0.880",
        "below target: en: oos_rejection 0.800 < 0.85",
    ]
    assert version.metrics == worse
    with pytest.raises(InvalidInput):
        lc.request_activation(session=session, version_id=version.id)


def test_retrain_measures_a_baseline_without_metrics_first(
    session: Session, tmp_path: Path, lc_settings: Settings
) -> None:
    base = lc.startup_model(session=session, given=_model_file(tmp_path, "kefu-000000000001"))
    evaluator = _evaluator(GOOD)
    version = lc.retrain(
        settings=lc_settings,
        unit=_unit(session),
        corrections=lambda s: CORRECTIONS,
        trainer=FakeTrainer(tmp_path),
        evaluator=evaluator,
    )
    calls = evaluator.calls  # type: ignore[attr-defined]
    assert [p.name for p in calls] == ["kefu-000000000001.tar.gz", f"{version.model_id}.tar.gz"]
    assert lc.get_version(session=session, version_id=base.id).metrics == GOOD
    assert version.status == "gate_passed"


def test_a_failed_training_is_recorded_with_the_log_tail(
    session: Session, tmp_path: Path, lc_settings: Settings
) -> None:
    _active_baseline(session, tmp_path)
    with pytest.raises(lc.LifecycleError):
        lc.retrain(
            settings=lc_settings,
            unit=_unit(session),
            corrections=lambda s: CORRECTIONS,
            trainer=FakeTrainer(tmp_path, fail=True),
            evaluator=_evaluator(GOOD),
        )
    row = session.scalars(
        select(ModelVersion).where(ModelVersion.source == "retrain").order_by(ModelVersion.id)
    ).all()[-1]
    assert row.status == "failed" and row.finished_at is not None
    assert "last line of rasa train" in row.log_tail
    assert "failed: rasa train failed (exit 1)" in row.log_tail


def test_one_retrain_at_a_time_and_none_without_corrections(
    session: Session, lc_settings: Settings
) -> None:
    with pytest.raises(InvalidInput, match="no reviewed corrections"):
        lc.start_retrain(session=session, settings=lc_settings, corrections=lambda s: "")
    first, text = lc.start_retrain(
        session=session, settings=lc_settings, corrections=lambda s: CORRECTIONS, clock=fixed_clock
    )
    assert first.status == "training" and text == CORRECTIONS
    with pytest.raises(InvalidInput, match="already running"):
        lc.start_retrain(
            session=session,
            settings=lc_settings,
            corrections=lambda s: CORRECTIONS,
            clock=fixed_clock,
        )
    # A job whose process died long ago is abandoned, and a new one may start.
    later = FIXED_NOW + timedelta(seconds=lc_settings.retrain_timeout_seconds * 3)
    second, _ = lc.start_retrain(
        session=session,
        settings=lc_settings,
        corrections=lambda s: CORRECTIONS,
        clock=lambda: later,
    )
    assert second.status == "training"
    abandoned = lc.get_version(session=session, version_id=first.id)
    assert abandoned.status == "failed" and "abandoned" in abandoned.log_tail


def test_the_endpoint_row_is_a_single_row(session: Session) -> None:
    lc.set_engine_state(session=session, state="starting")
    lc.set_engine_state(session=session, state="serving", message="ok")
    rows = session.scalars(select(EngineEndpoint)).all()
    assert [(r.id, r.state, r.message) for r in rows] == [(1, "serving", "ok")]


# --- the engine manager's switch, with stand-in Rasa processes ------------------------------


class FakeRasa:
    def __init__(self, port: int, fail: str | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.pid = 40000 + port
        self.fail = fail
        self.stopped = False

    def wait_ready(self, timeout: float, beat: Callable[[], None] = lambda: None) -> None:
        beat()
        if self.fail:
            raise StartFailed(self.fail)

    def renice(self) -> None:
        pass

    def stop(self, timeout: float = 20.0) -> None:
        self.stopped = True

    def alive(self) -> bool:
        return not self.stopped


def _manager(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str | None = None
) -> tuple[EngineManager, list[tuple[FakeRasa, int]]]:
    settings = Settings(
        environment="test",
        database_url="sqlite://",
        var_dir=tmp_path / "var",
        engine_ports=[5005, 5006],
        engine_grace_seconds=0,
    )
    manager = EngineManager(
        settings,
        model=_model_file(tmp_path, "kefu-111111111111"),
        credentials=PROJECT_ROOT / "credentials.yml",
        endpoints=PROJECT_ROOT / "endpoints.yml",
        unit=_unit(session),
    )
    spawned: list[tuple[FakeRasa, int]] = []

    def spawn(model: Path, port: int, *, nice: int = 0) -> FakeRasa:
        rasa = FakeRasa(port, fail=fail if spawned else None)  # the first one always starts
        spawned.append((rasa, nice))
        return rasa

    monkeypatch.setattr(manager, "_spawn", spawn)
    monkeypatch.setattr(
        manager, "_free_port", lambda besides=None: 5006 if besides == 5005 else 5005
    )
    return manager, spawned


def test_the_manager_swaps_in_a_new_rasa_then_stops_the_old(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, spawned = _manager(session, tmp_path, monkeypatch)
    manager.start()
    first = lc.current_endpoint(session=session)
    assert first is not None and first.urls == ["http://127.0.0.1:5005"]
    assert first.process["rasa"] == 45005 and first.state == "serving"
    candidate = _gate_passed(session, _model_file(tmp_path, "kefu-retrain-9"))
    manager.poll_once()  # nothing requested: nothing happens
    assert len(spawned) == 1
    lc.request_activation(session=session, version_id=candidate.id)
    manager.poll_once()

    (old, _), (new, nice) = spawned
    assert nice == LOADING_NICE and old.stopped and not new.stopped
    after = lc.current_endpoint(session=session)
    assert after is not None
    assert (after.generation, after.urls) == (first.generation + 1, ["http://127.0.0.1:5006"])
    assert after.requested_version_id is None and after.process["port"] == 5006
    assert lc.active_version(session=session).id == candidate.id  # type: ignore[union-attr]
    assert manager.current is new and manager.others == []
    manager.shutdown()
    assert new.stopped
    assert lc.current_endpoint(session=session).state == "stopped"  # type: ignore[union-attr]


def test_a_new_rasa_that_does_not_start_changes_nothing(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, spawned = _manager(session, tmp_path, monkeypatch, fail="rasa exited with status 1")
    manager.start()
    before = lc.current_endpoint(session=session)
    assert before is not None
    candidate = _gate_passed(session, _model_file(tmp_path, "kefu-retrain-10"))
    lc.request_activation(session=session, version_id=candidate.id)
    manager.poll_once()

    (old, _), (new, _) = spawned
    assert new.stopped and not old.stopped and manager.current is old
    after = lc.current_endpoint(session=session)
    assert after is not None
    assert (after.generation, after.urls) == (before.generation, before.urls)
    assert after.requested_version_id is None
    assert "failed: rasa exited with status 1" in after.message
    version = lc.get_version(session=session, version_id=candidate.id)
    assert version.status == "gate_passed"
    assert "activation failed: rasa exited with status 1" in version.log_tail
