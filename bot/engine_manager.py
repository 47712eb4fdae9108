"""The engine manager: runs Rasa with the active model and swaps models without an outage.

``python -m bot.engine_manager --model models/kefu-<id>.tar.gz`` (the Procfile's ``rasa``
line) starts Rasa on the first free port of ``KEFU_ENGINE_PORTS`` (127.0.0.1 only), waits
until the Kefu channel's readiness route answers and a warm-up turn succeeds, and publishes
its URL in the ``engine_endpoint`` record (generation + 1), which API workers follow.

Then it polls the record (every ``KEFU_ENGINE_POLL_SECONDS``) for an activation the console
asked for. Rasa takes some 20 s to load a model, so a swap starts a second Rasa with the new
model on the other port, waits for its readiness and a warm-up turn, publishes the new URL —
new turns go there from the gateway's next poll — keeps the old one running for
``KEFU_ENGINE_GRACE_SECONDS`` so turns in flight finish, and only then stops it. Both Rasa
processes share the SQL tracker store, and the gateway runs one turn per conversation at a
time, so a conversation continues on the new one where it left off. If the new Rasa does not
come up, it is stopped, nothing else changes and the failure is recorded on the version.

Standard library, httpx and bot/ only: Rasa itself runs in the engine environment as a child
process.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

import httpx
from sqlalchemy.orm import Session

from bot.db import run_with_retry
from bot.errors import KefuError
from bot.services import lifecycle
from bot.settings import PROJECT_ROOT, Settings, get_settings

logger = logging.getLogger("kefu.engine_manager")
T = TypeVar("T")
WARM_UP_TEXTS = ("你好", "hello")
HEARTBEAT_SECONDS = 2.0
PR_SET_PDEATHSIG = 1
LOADING_NICE = 10


class StartFailed(Exception):
    """A Rasa process that did not become ready (the reason is the message)."""


def _die_with_parent() -> None:
    # A manager killed outright must not leave Rasa servers behind (Linux only).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RasaProcess:
    """One ``rasa run`` on 127.0.0.1:``port`` with ``model``."""

    def __init__(
        self,
        *,
        model: Path,
        port: int,
        settings: Settings,
        credentials: Path,
        endpoints: Path,
        log_dir: Path | None = None,
        nice: int = 0,
    ) -> None:
        self.model = model
        self.nice = nice
        self.port = port
        self.settings = settings
        self.credentials = credentials
        self.endpoints = endpoints
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> RasaProcess:
        cmd = [
            str(lifecycle.resolve(self.settings.engine_rasa_bin)),
            "run",
            "--model", str(self.model),
            "-i", "127.0.0.1",
            "-p", str(self.port),
            "--credentials", str(self.credentials),
            "--endpoints", str(self.endpoints),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        env.setdefault("RASA_TELEMETRY_ENABLED", "false")
        out: Any = None  # inherit: honcho shows Rasa's output next to the manager's
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._log = (self.log_dir / f"rasa-{self.port}-{int(time.time())}.log").open("ab")
            out = self._log
        self.proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=self._in_child,
        )
        logger.info("started rasa pid %s on %s with %s", self.proc.pid, self.url, self.model)
        return self

    def _in_child(self) -> None:
        _die_with_parent()
        if self.nice:
            os.nice(self.nice)

    def renice(self) -> None:
        """Back to normal priority, every thread (Linux niceness is per thread); where the
        system does not allow raising priority again, it stays low."""
        if not self.nice or self.proc is None:
            return
        try:
            threads = os.listdir(f"/proc/{self.proc.pid}/task")
        except OSError:
            threads = [str(self.proc.pid)]
        for tid in threads:
            with contextlib.suppress(OSError, ValueError):
                os.setpriority(os.PRIO_PROCESS, int(tid), 0)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        logger.info("stopped rasa pid %s on %s", self.proc.pid, self.url)
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_ready(self, timeout: float, beat: Callable[[], None] = lambda: None) -> None:
        """Until the readiness route says 200 and warm-up turns are answered; raises
        StartFailed if the process exits or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as client:
            while True:
                beat()
                if not self.alive():
                    code = self.proc.returncode if self.proc else None
                    raise StartFailed(f"rasa exited with status {code} while loading")
                if time.monotonic() > deadline:
                    raise StartFailed(f"rasa not ready after {timeout:.0f} s")
                try:
                    if client.get(f"{self.url}/webhooks/kefu/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            for text in WARM_UP_TEXTS:
                body = {
                    "sender": f"warmup-manager-{secrets.token_hex(6)}",
                    "message_id": secrets.token_hex(16),
                    "text": text,
                    "metadata": {"warmup": True},
                }
                try:
                    response = client.post(f"{self.url}/webhooks/kefu/turn", json=body, timeout=30)
                except httpx.HTTPError as exc:
                    raise StartFailed(f"warm-up turn failed: {exc}") from exc
                data = response.json() if response.status_code == 200 else {}
                if response.status_code != 200 or data.get("failure") or not data.get("replies"):
                    raise StartFailed(
                        f"warm-up turn failed: HTTP {response.status_code} "
                        f"{data.get('failure') or ''}".strip()
                    )


class EngineManager:
    def __init__(
        self,
        settings: Settings,
        *,
        model: Path | None,
        credentials: Path,
        endpoints: Path,
        log_dir: Path | None = None,
        unit: Callable[[Callable[[Session], Any]], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.given = model
        self.credentials = credentials
        self.endpoints = endpoints
        self.log_dir = log_dir
        self.unit = unit or (lambda work: run_with_retry(work))
        self.current: RasaProcess | None = None
        self.current_version: int | None = None
        # A Rasa loading a new model, or one serving out its grace period: stopped too
        # when the manager stops.
        self.others: list[RasaProcess] = []
        self.stopping = False
        self._last_beat = 0.0

    # --- helpers --------------------------------------------------------------------------

    def _process_info(self, rasa: RasaProcess) -> dict[str, Any]:
        return {"manager": os.getpid(), "rasa": rasa.pid, "port": rasa.port}

    def _beat(self, state: str = "", message: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_beat < HEARTBEAT_SECONDS:
            return
        self._last_beat = now
        current = self.current
        process = self._process_info(current) if current is not None else None
        try:
            self.unit(
                lambda s: lifecycle.set_engine_state(
                    session=s,
                    state=state or ("serving" if current is not None else "starting"),
                    message=message,
                    process=process,
                )
            )
        except Exception:  # a database hiccup must not take the engine down
            logger.warning("heartbeat failed", exc_info=True)

    def _spawn(self, model: Path, port: int, *, nice: int = 0) -> RasaProcess:
        return RasaProcess(
            model=model,
            port=port,
            settings=self.settings,
            credentials=self.credentials,
            endpoints=self.endpoints,
            log_dir=self.log_dir,
            nice=nice,
        ).start()

    def _free_port(self, *, besides: int | None = None) -> int:
        for port in self.settings.engine_ports:
            if port != besides and port_free(port):
                return port
        raise StartFailed(
            f"no free port among {self.settings.engine_ports}"
            + (f" besides {besides}" if besides else "")
        )

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            self._beat()
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    # --- the two jobs ---------------------------------------------------------------------

    def start(self) -> None:
        """Serve the startup model (see lifecycle.startup_model)."""
        version = self.unit(lambda s: lifecycle.startup_model(session=s, given=self.given))
        model = lifecycle.resolve(version.model_path)
        self._beat("starting", f"loading {version.model_id}", force=True)
        rasa = self._spawn(model, self._free_port())
        try:
            rasa.wait_ready(self.settings.engine_start_timeout_seconds, beat=self._beat)
        except StartFailed as exc:
            rasa.stop()
            self._beat("failed", f"{version.model_id} did not start: {exc}", force=True)
            raise
        self.current, self.current_version = rasa, version.id
        generation = self.unit(
            lambda s: lifecycle.publish(
                session=s, urls=[rasa.url], version_id=version.id, process=self._process_info(rasa)
            )
        )
        logger.info("serving %s at %s (generation %s)", version.model_id, rasa.url, generation)
        print(f"engine: serving {version.model_id} at {rasa.url}", flush=True)

    def switch(self, version: lifecycle.VersionView) -> bool:
        """Swap ``version`` in; True if it serves now."""
        old = self.current
        assert old is not None
        self._beat("switching", f"starting {version.model_id}", force=True)
        new: RasaProcess | None = None
        try:
            model = lifecycle.resolve(version.model_path)
            if not model.exists():
                raise StartFailed(f"model file missing: {version.model_path}")
            # Loading a model is minutes of CPU on a small machine: at low priority, so the
            # serving Rasa keeps its turn deadlines meanwhile.
            new = self._spawn(model, self._free_port(besides=old.port), nice=LOADING_NICE)
            self.others.append(new)
            new.wait_ready(self.settings.engine_start_timeout_seconds, beat=self._beat)
        except StartFailed as exc:
            if new is not None:
                new.stop()
                self.others.remove(new)
            reason = str(exc)
            logger.error("activation of %s failed: %s", version.model_id, reason)
            self.unit(
                lambda s: lifecycle.fail_activation(session=s, version_id=version.id, reason=reason)
            )
            return False
        ready = new
        ready.renice()
        try:
            generation = self.unit(
                lambda s: lifecycle.publish(
                    session=s,
                    urls=[ready.url],
                    version_id=version.id,
                    process=self._process_info(ready),
                )
            )
        except Exception as exc:  # not published: the old Rasa keeps serving
            why = f"not published: {exc}"
            ready.stop()
            self.others.remove(ready)
            logger.exception("publishing %s failed", version.model_id)
            with contextlib.suppress(Exception):
                self.unit(
                    lambda s: lifecycle.fail_activation(
                        session=s, version_id=version.id, reason=why
                    )
                )
            return False
        self.current, self.current_version = ready, version.id
        self.others = [old]
        logger.info(
            "switched to %s at %s (generation %s); old rasa stops in %.0f s",
            version.model_id, ready.url, generation, self.settings.engine_grace_seconds,
        )  # fmt: skip
        self._sleep(self.settings.engine_grace_seconds)
        old.stop()
        self.others = []
        self._beat("serving", f"serving {version.model_id} at {ready.url}", force=True)
        return True

    def poll_once(self) -> None:
        self._beat()
        pending = self.unit(lambda s: lifecycle.pending_activation(session=s))
        if pending is not None:
            self.switch(pending)

    def run(self) -> int:
        self.start()
        while not self.stopping:
            if self.current is None or not self.current.alive():
                code = self.current.proc.returncode if self.current and self.current.proc else None
                logger.error("rasa exited (status %s); the engine manager stops", code)
                self._beat("failed", f"rasa exited with status {code}", force=True)
                return 1
            try:
                self.poll_once()
            except Exception:
                logger.exception("engine manager poll failed")
            self._sleep(self.settings.engine_poll_seconds)
        return 0

    def shutdown(self) -> None:
        self.stopping = True
        for rasa in [*self.others, self.current]:
            if rasa is not None:
                rasa.stop()
        self._beat("stopped", "engine manager stopped", force=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.engine_manager")
    parser.add_argument("--model", type=Path, help="the model `make train` built (KEFU_MODEL)")
    parser.add_argument("--credentials", type=Path, default=PROJECT_ROOT / "credentials.yml")
    parser.add_argument("--endpoints", type=Path, default=PROJECT_ROOT / "endpoints.yml")
    parser.add_argument("--log-dir", type=Path, help="Rasa output to files here (else stdout)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every readiness poll
    model = args.model or (Path(os.environ["KEFU_MODEL"]) if os.environ.get("KEFU_MODEL") else None)
    manager = EngineManager(
        get_settings(),
        model=lifecycle.resolve(model) if model else None,
        credentials=lifecycle.resolve(args.credentials),
        endpoints=lifecycle.resolve(args.endpoints),
        log_dir=lifecycle.resolve(args.log_dir) if args.log_dir else None,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        manager.stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        return manager.run()
    except KeyboardInterrupt:
        return 0
    except (StartFailed, KefuError) as exc:
        print(f"engine manager: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        manager.shutdown()


if __name__ == "__main__":
    sys.exit(main())
