"""Starts the real thing for integration tests and the benchmark: the action server, a Rasa
server with the trained model, and the API, on free loopback ports, with a fresh database
and a fresh tracker store in a temporary directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.identity import issue_customer_token
from bot.settings import PROJECT_ROOT

ENGINE_BIN = Path(os.environ.get("KEFU_ENGINE_BIN", PROJECT_ROOT / ".venv-engine" / "bin"))
SECRET_KEY = "integration-secret"
STORE_SECRET = "integration-store-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_model() -> Path:
    """The model ``make train`` built (``KEFU_MODEL``), else the newest under models/."""
    named = os.environ.get("KEFU_MODEL")
    if named:
        path = Path(named) if Path(named).is_absolute() else PROJECT_ROOT / named
        if path.exists():
            return path
    models = sorted((PROJECT_ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise RuntimeError("no trained model: run `make train` first")
    return models[-1]


class Stack:
    def __init__(
        self, workdir: Path, *, database_url: str | None = None, deadline: float = 5.0
    ) -> None:
        self.dir = workdir
        self.model = find_model()
        self.database_url = database_url or f"sqlite:///{workdir / 'kefu.db'}"
        self.rasa_port, self.action_port, self.api_port = free_port(), free_port(), free_port()
        # Another site that may embed the widget (the browser tests serve a shop page there).
        self.embedding_port = free_port()
        self.deadline = deadline
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
        env.update(
            {
                "KEFU_ENVIRONMENT": "test",
                "KEFU_DATABASE_URL": self.database_url,
                "KEFU_VAR_DIR": str(self.dir / "var"),
                "KEFU_SECRET_KEY": SECRET_KEY,
                "KEFU_STORE_TOKEN_SECRET": STORE_SECRET,
                "KEFU_RASA_URLS": json.dumps([self.rasa_url]),
                "KEFU_ACTION_SERVER_URL": f"http://127.0.0.1:{self.action_port}",
                "KEFU_API_PORT": str(self.api_port),
                "KEFU_ALLOWED_ORIGINS": json.dumps(
                    [self.api_url, f"http://127.0.0.1:{self.embedding_port}"]
                ),
                "KEFU_TURN_DEADLINE_SECONDS": str(self.deadline),
                # Every test connects from 127.0.0.1: only the per-conversation limit (20
                # messages a minute) stays as shipped; the per-address ones would trip.
                "KEFU_LIMIT_NEW_CONVERSATIONS_PER_IP_HOUR": "100000",
                "KEFU_LIMIT_NEW_CONVERSATIONS_PER_VISITOR_HOUR": "1000",
                "KEFU_LIMIT_SOCKETS_PER_IP": "10000",
                "PYTHONPATH": str(PROJECT_ROOT),
                "SANIC_HOST": "127.0.0.1",
            }
        )
        return env

    def customer_token(self, external_id: str) -> str:
        return issue_customer_token(external_id, key=STORE_SECRET)

    def _spawn(self, name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.procs[name] = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env={**self.env(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def prepare_database(self) -> None:
        for command in ("init", "seed"):
            subprocess.run(
                [sys.executable, "-m", "bot.cli", command],
                cwd=PROJECT_ROOT,
                env=self.env(),
                check=True,
                capture_output=True,
                timeout=300,
            )

    def start_actions(self) -> None:
        self._spawn(
            "actions",
            [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(self.action_port)],
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def start(self, timeout: float = 300) -> Stack:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare_database()
        endpoints = self.dir / "endpoints.yml"
        endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{self.action_port}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n'
            f'  db: "{self.dir / "tracker.db"}"\n'
        )
        self.start_actions()
        self._spawn(
            "rasa",
            [
                str(ENGINE_BIN / "rasa"),
                "run",
                "--model",
                str(self.model),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.rasa_port),
                "--credentials",
                "credentials.yml",
                "--endpoints",
                str(endpoints),
            ],
        )
        self._spawn_api("api", self.api_port)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.close()  # a stack that never became ready must not outlive the test run
            raise
        return self

    def _spawn_api(self, name: str, port: int, extra_env: dict[str, str] | None = None) -> None:
        self._spawn(
            name,
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws-max-size",
                "65536",
            ],
            {"KEFU_API_PORT": str(port), **(extra_env or {})},
        )

    def start_api_worker(
        self, name: str, extra_env: dict[str, str] | None = None, timeout: float = 120
    ) -> str:
        """Another API worker on the same database and Rasa server (e.g. with
        ``KEFU_REDIS_URL`` for shared events); returns its URL once it is ready."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        origins = json.dumps([url, self.api_url])
        self._spawn_api(name, port, {"KEFU_ALLOWED_ORIGINS": origins, **(extra_env or {})})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.log(name)[-3000:]}")
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} not ready in time:\n{self.log(name)[-2000:]}")

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.log(name)[-3000:]}")
            try:
                if httpx.get(f"{self.api_url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            "stack not ready in time:\n"
            + "\n".join(f"--- {n}\n{self.log(n)[-2000:]}" for n in self.procs)
        )

    def wait_engine_ready(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.rasa_url}/webhooks/kefu/ready", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        return False

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
