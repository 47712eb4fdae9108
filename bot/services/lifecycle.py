"""The model lifecycle: retrain with the reviewed corrections, measure the new model on the
held-out set, gate it against the serving one, and ask the engine manager to swap it in.

Every step is recorded on the candidate's ``model_version`` row (status, metrics, the gate's
verdict and the tail of the training / evaluation output), so the console can show a job
while it runs and why it ended the way it did. Training and evaluation run as subprocesses
in the engine environment (``rasa train``, ``scripts/eval_nlu.py``); this module imports
neither Rasa nor FastAPI.

The gate (``gate``): a candidate passes only if, in every language the baseline was measured
in, none of in-scope accuracy, macro-F1 and out-of-scope rejection dropped by more than
``Settings.gate_tolerance`` (default 0.0: any drop fails), and the eval's own targets
(``scripts/eval_nlu.py`` TARGETS, per-intent F1 included) still hold.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import Clock, utcnow
from bot.db import run_with_retry
from bot.errors import InvalidInput, KefuError, NotFound
from bot.models.lifecycle import EngineEndpoint, ModelVersion
from bot.settings import PROJECT_ROOT, Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
Unit = Callable[[Callable[[Session], T]], T]

METRICS = ("accuracy", "macro_f1", "oos_rejection")
LOG_TAIL_CHARS = 4000
TRAINING_NICE = 10
ENDPOINT_ID = 1
# Which status may follow which. A make_train model the engine manager starts with goes
# straight from trained to active: it is what `make run` serves, gate or not.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "training": ("trained", "failed"),
    "trained": ("gate_passed", "gate_failed", "failed", "active"),
    "gate_passed": ("active",),
    "gate_failed": (),
    "failed": (),
    "active": ("retired",),
    "retired": ("active",),
}


class LifecycleError(KefuError):
    """A lifecycle step that cannot go on (training failed, no eval output, …)."""

    code = "lifecycle_error"


# --- plain views ------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionView:
    id: int
    model_id: str
    model_path: str
    source: str
    status: str
    metrics: dict[str, Any] | None
    gate: dict[str, Any] | None
    baseline_id: int | None
    corrections_count: int
    log_tail: str
    created_at: datetime
    finished_at: datetime | None
    activated_at: datetime | None
    retired_at: datetime | None

    @classmethod
    def of(cls, row: ModelVersion) -> VersionView:
        return cls(
            id=row.id,
            model_id=row.model_id,
            model_path=row.model_path,
            source=row.source,
            status=row.status,
            metrics=row.metrics,
            gate=row.gate,
            baseline_id=row.baseline_id,
            corrections_count=row.corrections_count,
            log_tail=row.log_tail,
            created_at=row.created_at,
            finished_at=row.finished_at,
            activated_at=row.activated_at,
            retired_at=row.retired_at,
        )


@dataclass(frozen=True)
class EndpointView:
    urls: list[str]
    generation: int
    model_version_id: int | None
    model_id: str
    state: str
    message: str
    process: dict[str, Any]
    requested_version_id: int | None
    requested_at: datetime | None
    heartbeat_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, row: EngineEndpoint) -> EndpointView:
        return cls(
            urls=list(row.urls or []),
            generation=row.generation,
            model_version_id=row.model_version_id,
            model_id=row.model_id,
            state=row.state,
            message=row.message,
            process=dict(row.process or {}),
            requested_version_id=row.requested_version_id,
            requested_at=row.requested_at,
            heartbeat_at=row.heartbeat_at,
            updated_at=row.updated_at,
        )

    def is_live(self, now: datetime, max_age: float) -> bool:
        """Whether a manager is alive behind this record (its heartbeat is recent)."""
        return self.heartbeat_at is not None and (now - self.heartbeat_at).total_seconds() <= (
            max_age
        )


@dataclass(frozen=True)
class GateResult:
    passed: bool
    tolerance: float
    reasons: list[str] = field(default_factory=list)
    eval_problems: list[str] = field(default_factory=list)
    baseline_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalResult:
    """Per-language headline metrics and the eval's own below-target problems."""

    metrics: dict[str, dict[str, float]]
    problems: list[str]


# --- the gate -----------------------------------------------------------------------------


def gate(
    candidate: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]] | None,
    *,
    tolerance: float = 0.0,
    eval_problems: Iterable[str] = (),
    baseline_id: int | None = None,
) -> GateResult:
    """Pass only if no language's metric dropped by more than ``tolerance`` against
    ``baseline`` and the eval reported no below-target problem. Without a baseline only the
    eval's targets count (said in the reasons' absence by ``baseline_id`` being None)."""
    if tolerance < 0:
        raise InvalidInput("the gate tolerance cannot be negative")
    reasons: list[str] = []
    problems = list(eval_problems)
    if not candidate:
        reasons.append("the candidate has no metrics")
    for language, base in sorted((baseline or {}).items()):
        mine = candidate.get(language)
        if mine is None:
            reasons.append(f"{language}: not measured")
            continue
        for metric in METRICS:
            if metric not in base:
                continue
            if metric not in mine:
                reasons.append(f"{language} {metric}: not measured")
                continue
            # The epsilon keeps identical figures (a retrain on the same data reproduces them
            # exactly) from failing on float noise.
            if mine[metric] < base[metric] - tolerance - 1e-9:
                reasons.append(
                    f"{language} {metric} {mine[metric]:.3f} < baseline {base[metric]:.3f}"
                    + (f" − {tolerance:.3f}" if tolerance else "")
                )
    reasons += [f"below target: {p}" for p in problems]
    return GateResult(
        passed=not reasons,
        tolerance=tolerance,
        reasons=reasons,
        eval_problems=problems,
        baseline_id=baseline_id,
    )


# --- rows ---------------------------------------------------------------------------------


def _version(session: Session, version_id: int, *, lock: bool = False) -> ModelVersion:
    query = select(ModelVersion).where(ModelVersion.id == version_id)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no model version {version_id}")
    return row


def _transition(row: ModelVersion, to: str) -> None:
    if to not in TRANSITIONS.get(row.status, ()):
        raise InvalidInput(f"model version {row.id} is {row.status}; it cannot become {to}")
    row.status = to


def _append_log(row: ModelVersion, text: str, clock: Clock) -> None:
    stamp = clock().strftime("%H:%M:%S")
    lines = "".join(f"[{stamp}] {line}\n" for line in text.rstrip("\n").splitlines())
    row.log_tail = (row.log_tail + lines)[-LOG_TAIL_CHARS:]


def list_versions(*, session: Session, limit: int = 50) -> list[VersionView]:
    """The newest versions first."""
    rows = session.scalars(
        select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    ).all()
    return [VersionView.of(r) for r in rows[:limit]]


def get_version(*, session: Session, version_id: int) -> VersionView:
    return VersionView.of(_version(session, version_id))


def active_version(*, session: Session) -> VersionView | None:
    row = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.status == "active")
        .order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    return VersionView.of(row) if row else None


def _model_id(path: Path) -> str:
    name = path.name
    return name[: -len(".tar.gz")] if name.endswith(".tar.gz") else path.stem


def _stored_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def resolve(path: str | Path) -> Path:
    """A stored or configured path: absolute, or relative to the project root."""
    p = Path(path)
    return p if p.is_absolute() else PROJECT_ROOT / p


def register_model(
    *,
    session: Session,
    model_path: Path,
    source: str = "make_train",
    status: str = "trained",
    metrics: dict[str, Any] | None = None,
    clock: Clock = utcnow,
) -> VersionView:
    """The row of a model file, created if the model is new (idempotent on the model id)."""
    model_id = _model_id(model_path)
    row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model_id))
    if row is None:
        now = clock()
        row = ModelVersion(
            model_id=model_id,
            model_path=_stored_path(model_path),
            source=source,
            status=status,
            metrics=metrics,
            corrections_count=0,
            log_tail="",
            created_at=now,
            finished_at=now,
        )
        _append_log(row, f"registered {row.model_path}", clock)
        session.add(row)
        session.flush()
    return VersionView.of(row)


def _activate(session: Session, row: ModelVersion, clock: Clock) -> None:
    """``row`` becomes the active version; the one it replaces retires."""
    now = clock()
    for old in session.scalars(
        select(ModelVersion).where(ModelVersion.status == "active", ModelVersion.id != row.id)
    ).all():
        _transition(old, "retired")
        old.retired_at = now
        _append_log(old, f"retired: replaced by {row.model_id}", clock)
    if row.status == "active":
        return  # already serving (the manager restarted with it)
    _transition(row, "active")
    row.activated_at = now
    row.retired_at = None
    _append_log(row, "activated", clock)


def startup_model(*, session: Session, given: Path | None, clock: Clock = utcnow) -> VersionView:
    """The model the engine manager starts with.

    A model ``make train`` just built from changed data (``given``, unknown to the database)
    takes over; otherwise the last activated version keeps serving (as long as its file is
    there); with no rows at all, ``given`` is registered and serves — ``make run`` behaves as
    before there was a lifecycle.
    """
    active = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.status == "active")
        .order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )
    if given is not None:
        known = session.scalar(
            select(ModelVersion).where(ModelVersion.model_id == _model_id(given))
        )
        if known is None or active is None or not resolve(active.model_path).exists():
            view = register_model(session=session, model_path=given, clock=clock)
            row = _version(session, view.id)
            if row.status not in ("active",):
                if "active" not in TRANSITIONS.get(row.status, ()):
                    raise InvalidInput(
                        f"{row.model_id} is {row.status}: it cannot serve; activate another "
                        "version or train a new model"
                    )
                _activate(session, row, clock)
            session.flush()
            return VersionView.of(row)
    if active is None or not resolve(active.model_path).exists():
        raise InvalidInput("no model to serve: pass --model or activate a version")
    return VersionView.of(active)


def begin_retrain(
    *,
    session: Session,
    corrections_yaml: str,
    allow_empty: bool = False,
    clock: Clock = utcnow,
) -> VersionView:
    """A new ``training`` row for a retrain with ``corrections_yaml``; one at a time."""
    count = count_examples(corrections_yaml)
    if count == 0 and not allow_empty:
        raise InvalidInput("there are no reviewed corrections to train with yet")
    running = session.scalars(select(ModelVersion).where(ModelVersion.status == "training"))
    for row in running:
        raise InvalidInput(f"a retrain is already running ({row.model_id})")
    now = clock()
    row = ModelVersion(
        model_id=f"kefu-retrain-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}",
        model_path="",
        source="retrain",
        status="training",
        corrections_count=count,
        log_tail="",
        created_at=now,
    )
    _append_log(row, f"retrain started with {count} corrected example(s)", clock)
    session.add(row)
    session.flush()
    return VersionView.of(row)


def abandon_stale(*, session: Session, max_age: timedelta, clock: Clock = utcnow) -> int:
    """Mark retrains that have been ``training`` longer than ``max_age`` failed (the
    process that ran them died); returns how many."""
    cutoff = clock() - max_age
    rows = session.scalars(
        select(ModelVersion).where(
            ModelVersion.status == "training", ModelVersion.created_at < cutoff
        )
    ).all()
    for row in rows:
        _transition(row, "failed")
        row.finished_at = clock()
        _append_log(row, "abandoned: the job stopped without finishing", clock)
    return len(rows)


def count_examples(nlu_yaml: str) -> int:
    """How many examples a Rasa NLU YAML document holds; refuses anything else."""
    if not nlu_yaml.strip():
        return 0
    try:
        data = yaml.safe_load(nlu_yaml)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"the corrections are not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nlu", []), list):
        raise InvalidInput("the corrections are not Rasa NLU YAML (no nlu: list)")
    count = 0
    for block in data.get("nlu") or []:
        if not isinstance(block, dict) or "intent" not in block:
            raise InvalidInput("every corrections block needs an intent")
        examples = str(block.get("examples", ""))
        count += sum(1 for line in examples.splitlines() if line.strip().startswith("- "))
    return count


# --- the endpoint record ------------------------------------------------------------------


def _endpoint(session: Session, clock: Clock, *, lock: bool = False) -> EngineEndpoint:
    query = select(EngineEndpoint).where(EngineEndpoint.id == ENDPOINT_ID)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        row = EngineEndpoint(
            id=ENDPOINT_ID,
            urls=[],
            generation=0,
            model_id="",
            state="starting",
            message="",
            process={},
            updated_at=clock(),
        )
        session.add(row)
        session.flush()
    return row


def current_endpoint(*, session: Session) -> EndpointView | None:
    row = session.get(EngineEndpoint, ENDPOINT_ID)
    return EndpointView.of(row) if row else None


def request_activation(*, session: Session, version_id: int, clock: Clock = utcnow) -> None:
    """Ask the engine manager to swap ``version_id`` in. Only a version that passed the gate
    may serve, and one switch at a time."""
    row = _version(session, version_id)
    if row.status != "gate_passed":
        raise InvalidInput(
            f"only a model that passed the gate can be activated ({row.model_id} is {row.status})"
        )
    if not resolve(row.model_path).exists():
        raise InvalidInput(f"the model file of {row.model_id} is missing")
    endpoint = _endpoint(session, clock, lock=True)
    if endpoint.requested_version_id is not None and endpoint.requested_version_id != row.id:
        raise InvalidInput("another activation is in progress; wait for it to finish")
    endpoint.requested_version_id = row.id
    endpoint.requested_at = clock()
    endpoint.updated_at = clock()
    _append_log(row, "activation requested", clock)


def pending_activation(*, session: Session) -> VersionView | None:
    endpoint = session.get(EngineEndpoint, ENDPOINT_ID)
    if endpoint is None or endpoint.requested_version_id is None:
        return None
    return VersionView.of(_version(session, endpoint.requested_version_id))


def set_engine_state(
    *,
    session: Session,
    state: str,
    message: str = "",
    process: dict[str, Any] | None = None,
    clock: Clock = utcnow,
) -> None:
    """The manager's heartbeat and state (``heartbeat_at`` = now)."""
    row = _endpoint(session, clock)
    row.state = state
    if message:
        row.message = message[:500]
    if process is not None:
        row.process = process
    row.heartbeat_at = clock()
    row.updated_at = clock()


def publish(
    *,
    session: Session,
    urls: list[str],
    version_id: int,
    process: dict[str, Any],
    clock: Clock = utcnow,
) -> int:
    """Point the gateway at ``urls`` (generation + 1), make ``version_id`` the active
    version (the old one retires) and clear its activation request, in one transaction.
    Returns the new generation."""
    if not urls:
        raise InvalidInput("an engine endpoint needs at least one URL")
    row = _version(session, version_id, lock=True)
    endpoint = _endpoint(session, clock, lock=True)
    _activate(session, row, clock)
    endpoint.urls = list(urls)
    endpoint.generation = endpoint.generation + 1
    endpoint.model_version_id = row.id
    endpoint.model_id = row.model_id
    endpoint.state = "serving"
    endpoint.message = f"serving {row.model_id} at {', '.join(urls)}"
    endpoint.process = process
    if endpoint.requested_version_id == row.id:
        endpoint.requested_version_id = None
        endpoint.requested_at = None
    endpoint.heartbeat_at = clock()
    endpoint.updated_at = clock()
    return endpoint.generation


def fail_activation(
    *, session: Session, version_id: int, reason: str, clock: Clock = utcnow
) -> None:
    """The new Rasa did not come up: nothing changes but the record of why."""
    row = _version(session, version_id)
    _append_log(row, f"activation failed: {reason}", clock)
    endpoint = _endpoint(session, clock)
    if endpoint.requested_version_id == version_id:
        endpoint.requested_version_id = None
        endpoint.requested_at = None
    endpoint.state = "serving" if endpoint.urls else "failed"
    endpoint.message = f"activation of {row.model_id} failed: {reason}"[:500]
    endpoint.heartbeat_at = clock()
    endpoint.updated_at = clock()


# --- training and evaluation (subprocesses in the engine environment) ---------------------


def build_training_dir(
    dest: Path, *, corrections_yaml: str, config: Path | None = None, root: Path = PROJECT_ROOT
) -> Path:
    """``dest`` with the project's config.yml (or ``config``), domain.yml and data/, plus
    data/nlu/corrections.yml. Paths inside config.yml (the jieba dictionary) are relative,
    so training runs with ``dest`` as its working directory."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config or root / "config.yml", dest / "config.yml")
    shutil.copyfile(root / "domain.yml", dest / "domain.yml")
    shutil.copytree(root / "data", dest / "data", ignore=shutil.ignore_patterns("__pycache__"))
    if corrections_yaml.strip():
        (dest / "data" / "nlu" / "corrections.yml").write_text(corrections_yaml, "utf-8")
    return dest


def _engine_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)  # the engine/ components the pipeline names
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _tail(path: Path, chars: int = 1500) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - chars * 4))
        text = fh.read().decode("utf-8", errors="replace")
    # Progress bars redraw with carriage returns: keep the last state of each line.
    lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(line for line in lines if line.strip())[-chars:]


def run_logged(
    cmd: list[str],
    *,
    cwd: Path,
    log: Path,
    timeout: float,
    progress: Callable[[str], None] | None = None,
    every: float = 5.0,
) -> int:
    """Run ``cmd`` with its output in ``log``; ``progress`` gets the log's tail every
    ``every`` seconds. Returns the exit status; a timeout kills it and raises."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=_engine_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        # Training shares the cores with the serving Rasa: let the serving side win. Set from
        # here, not in a preexec_fn (unsafe in the API's threaded process); the child's
        # threads start later and inherit it.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, TRAINING_NICE)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return proc.wait(timeout=every)
            except subprocess.TimeoutExpired as exc:
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    name = Path(cmd[0]).name
                    raise LifecycleError(f"{name} took longer than {timeout:.0f} s") from exc
                if progress is not None:
                    progress(_tail(log, 300))


def train_model(
    workdir: Path,
    *,
    settings: Settings,
    model_name: str,
    log: Path,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """``rasa train`` in ``workdir`` (see build_training_dir); returns the model file."""
    out_dir = resolve(settings.models_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(resolve(settings.engine_rasa_bin)),
        "train",
        "--config", "config.yml",
        "--domain", "domain.yml",
        "--data", "data",
        "--out", str(out_dir),
        "--fixed-model-name", model_name,
    ]  # fmt: skip
    status = run_logged(
        cmd, cwd=workdir, log=log, timeout=settings.retrain_timeout_seconds, progress=progress
    )
    model = out_dir / f"{model_name}.tar.gz"
    text = log.read_text(errors="replace")
    if "Misaligned entity annotation" in text:
        model.unlink(missing_ok=True)
        raise LifecycleError("entity spans do not line up with tokens (see the training log)")
    if status != 0 or not model.exists():
        raise LifecycleError(f"rasa train failed (exit {status})")
    return model


def evaluate(
    model: Path,
    *,
    settings: Settings,
    log: Path,
    out: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvalResult:
    """``scripts/eval_nlu.py`` on the held-out set; the headline metrics per language and
    the eval's below-target problems. Exit 1 (below target) still yields metrics."""
    out = out or log.with_suffix(".eval.json")
    cmd = [
        str(resolve(settings.engine_python_bin)),
        str(PROJECT_ROOT / "scripts" / "eval_nlu.py"),
        "--model", str(model),
        "--out", str(out),
    ]  # fmt: skip
    out.unlink(missing_ok=True)
    status = run_logged(
        cmd, cwd=PROJECT_ROOT, log=log, timeout=settings.retrain_timeout_seconds,
        progress=progress,
    )  # fmt: skip
    if status not in (0, 1) or not out.exists():
        raise LifecycleError(f"the held-out evaluation failed (exit {status})")
    return parse_eval_report(yaml.safe_load(out.read_text(encoding="utf-8")))


def parse_eval_report(report: dict[str, Any]) -> EvalResult:
    """The lifecycle's view of eval_nlu.py's JSON report."""
    languages = report.get("languages")
    if not isinstance(languages, dict) or not languages:
        raise LifecycleError("the evaluation report has no languages")
    metrics = {
        language: {m: float(values[m]) for m in METRICS if m in values}
        for language, values in languages.items()
    }
    return EvalResult(metrics=metrics, problems=[str(p) for p in report.get("problems", [])])


def current_make_train_model(root: Path = PROJECT_ROOT) -> Path:
    """The file ``make train`` builds for the current config, domain, data and engine code."""
    spec = importlib.util.spec_from_file_location("kefu_model_id", root / "scripts" / "model_id.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return root / "models" / f"kefu-{module.model_id(root)}.tar.gz"


# --- the whole retrain job ----------------------------------------------------------------

Trainer = Callable[..., Path]
Evaluator = Callable[..., EvalResult]


def _default_unit(work: Callable[[Session], T]) -> T:
    return run_with_retry(work)


def corrections_from_review(session: Session) -> str:
    try:
        from bot.services.review_export import corrected_examples_yaml
    except ImportError as exc:
        raise InvalidInput(
            "the ops review has no corrections source yet "
            "(bot.services.review_export.corrected_examples_yaml)"
        ) from exc
    return str(corrected_examples_yaml(session=session))


def run_retrain(
    version_id: int,
    corrections_yaml: str,
    *,
    settings: Settings,
    unit: Unit[Any] = _default_unit,
    trainer: Trainer | None = None,
    evaluator: Evaluator | None = None,
    config: Path | None = None,
    clock: Clock = utcnow,
) -> VersionView:
    """Train, evaluate and gate the ``training`` version ``version_id``. Every step and its
    outcome lands on the row; a failure ends in status ``failed`` with the reason logged."""
    trainer = trainer or train_model
    evaluator = evaluator or evaluate
    name = unit(lambda s: _version(s, version_id).model_id)
    logs = resolve(settings.var_dir) / "lifecycle"
    log = logs / f"{name}.log"

    def note(text: str) -> None:
        unit(lambda s: _append_log(_version(s, version_id), text, clock))

    def progress(tail: str) -> None:
        last = tail.strip().splitlines()[-1:] if tail.strip() else []
        if last:
            note(f"… {last[0][:200]}")

    try:
        with tempfile.TemporaryDirectory(prefix="kefu-retrain-") as tmp:
            workdir = build_training_dir(
                Path(tmp), corrections_yaml=corrections_yaml, config=config
            )
            note(f"training {name} (log: {_stored_path(log)})")
            started = time.monotonic()
            model = trainer(workdir, settings=settings, model_name=name, log=log, progress=progress)
        trained_in = time.monotonic() - started

        def trained(s: Session) -> None:
            row = _version(s, version_id)
            row.model_path = _stored_path(model)
            _transition(row, "trained")
            _append_log(row, f"trained in {trained_in:.0f} s: {row.model_path}", clock)

        unit(trained)
        baseline = _baseline(
            settings=settings, unit=unit, evaluator=evaluator, log=log, clock=clock
        )
        note("evaluating on the held-out set")
        result = evaluator(model, settings=settings, log=log, progress=progress)

        def gated(s: Session) -> VersionView:
            row = _version(s, version_id)
            base = _version(s, baseline) if baseline is not None else None
            verdict = gate(
                result.metrics,
                base.metrics if base is not None else None,
                tolerance=settings.gate_tolerance,
                eval_problems=result.problems,
                baseline_id=baseline,
            )
            row.metrics = result.metrics
            row.gate = verdict.to_dict()
            row.baseline_id = baseline
            _transition(row, "gate_passed" if verdict.passed else "gate_failed")
            row.finished_at = clock()
            against = base.model_id if base is not None else "no baseline"
            summary = "passed" if verdict.passed else "failed: " + "; ".join(verdict.reasons)
            _append_log(row, f"gate against {against} {summary}", clock)
            return VersionView.of(row)

        return unit(gated)
    except Exception as exc:  # every failure is recorded on the row, then re-raised
        reason = str(exc) or type(exc).__name__
        tail = _tail(log, 1200)

        def failed(s: Session) -> VersionView:
            row = _version(s, version_id)
            if row.status in ("training", "trained"):
                row.status = "failed"
            row.finished_at = clock()
            _append_log(row, (f"{tail}\n" if tail else "") + f"failed: {reason}", clock)
            return VersionView.of(row)

        unit(failed)
        raise


def _baseline(
    *,
    settings: Settings,
    unit: Unit[Any],
    evaluator: Evaluator,
    log: Path,
    clock: Clock,
) -> int | None:
    """The version to compare with: the active one, else the model ``make train`` built for
    the current data. Measured first if it has no metrics yet."""

    def find(s: Session) -> VersionView | None:
        active = active_version(session=s)
        if active is not None:
            return active
        default = current_make_train_model()
        if not default.exists():
            return None
        return register_model(session=s, model_path=default, clock=clock)

    base: VersionView | None = unit(find)
    if base is None:
        return None
    if not base.metrics:
        path = resolve(base.model_path)
        if not path.exists():
            return None
        unit(
            lambda s: _append_log(
                _version(s, base.id), "measuring on the held-out set (baseline)", clock
            )
        )
        measured = evaluator(path, settings=settings, log=log)

        def store(s: Session) -> None:
            row = _version(s, base.id)
            row.metrics = measured.metrics
            _append_log(row, "measured on the held-out set", clock)

        unit(store)
    return base.id


def retrain(
    *,
    settings: Settings,
    unit: Unit[Any] = _default_unit,
    corrections: Callable[[Session], str] = corrections_from_review,
    trainer: Trainer | None = None,
    evaluator: Evaluator | None = None,
    config: Path | None = None,
    allow_empty: bool = False,
    clock: Clock = utcnow,
) -> VersionView:
    """The whole job in the calling thread (the CLI; the console starts it in a thread with
    ``launch_retrain``): take the corrections, train, evaluate, gate."""
    version, corrections_yaml = unit(
        lambda s: start_retrain(
            session=s,
            settings=settings,
            corrections=corrections,
            allow_empty=allow_empty,
            clock=clock,
        )
    )
    return run_retrain(
        version.id,
        corrections_yaml,
        settings=settings,
        unit=unit,
        trainer=trainer,
        evaluator=evaluator,
        config=config,
        clock=clock,
    )


def start_retrain(
    *,
    session: Session,
    settings: Settings,
    corrections: Callable[[Session], str] = corrections_from_review,
    allow_empty: bool = False,
    clock: Clock = utcnow,
) -> tuple[VersionView, str]:
    """The ``training`` row and the corrections it trains with (one unit of work)."""
    abandon_stale(
        session=session, max_age=timedelta(seconds=settings.retrain_timeout_seconds * 2),
        clock=clock,
    )  # fmt: skip
    corrections_yaml = corrections(session)
    version = begin_retrain(
        session=session, corrections_yaml=corrections_yaml, allow_empty=allow_empty, clock=clock
    )
    return version, corrections_yaml


def launch_retrain(
    version_id: int, corrections_yaml: str, *, settings: Settings
) -> threading.Thread:
    """Run ``run_retrain`` in a background thread (the console's button)."""

    def job() -> None:
        try:
            run_retrain(version_id, corrections_yaml, settings=settings)
        except Exception:  # recorded on the row by run_retrain
            logger.exception("retrain %s failed", version_id)

    thread = threading.Thread(target=job, name=f"kefu-retrain-{version_id}", daemon=True)
    thread.start()
    return thread
