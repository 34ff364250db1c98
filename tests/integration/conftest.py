"""Real parts for integration tests: the app served over HTTP (live server), a Celery worker
process with beat, Redis as the broker, PostgreSQL, and the Twilio sandbox standing in for
Twilio's cloud. Nothing of ours is mocked."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from notifications.sandbox import start_sandbox

from ..conftest import database_url_for_subprocess, subprocess_environment

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "integration-auth-token"
FROM_NUMBER = "+447700900000"
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = ""):
    """Poll until `predicate()` returns something truthy; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")


@pytest.fixture
def broker():
    """The test broker's Redis database, emptied so no task from an earlier test runs."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def sandbox(live_server):
    server, _thread = start_sandbox(
        port=0,
        app_url=live_server.url,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=FROM_NUMBER,
        auto_deliver=True,
    )
    yield server
    server.stop()


@pytest.fixture
def twilio_settings(settings, live_server, sandbox):
    """The web process (live server thread) talks Twilio to the sandbox, like the worker."""
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = FROM_NUMBER
    settings.TWILIO_API_URL = sandbox.url
    settings.PUBLIC_BASE_URL = live_server.url
    return settings


def worker_environment(*, live_server, sandbox, tmp_path, extra=None) -> dict[str, str]:
    env = subprocess_environment(
        DEBUG="1",
        DATABASE_URL=database_url_for_subprocess(),
        CELERY_BROKER_URL=django_settings.CELERY_BROKER_URL,
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_URL=sandbox.url,
        PUBLIC_BASE_URL=live_server.url,
        VAR_DIR=str(tmp_path),
        ALERT_SWEEP_SECONDS="1",
        ALERT_SWEEP_GRACE_SECONDS="2",
        DATABASE_CONN_MAX_AGE="60",
    )
    env.update(extra or {})
    return env


WORKER_THREADS = 4


class Worker:
    """A real `celery worker -B` process (beat runs the sweepers), a pool of threads as in
    production."""

    def __init__(self, *, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self.log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop())
        start_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-B",
                "-Q",
                "paging,default",
                # As docker-compose.yml runs it: a thread pool, database connections kept.
                "--pool",
                "threads",
                "--concurrency",
                str(WORKER_THREADS),
                "--loglevel",
                "INFO",
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
                "-s",
                str(self.log_path.parent / "beat-schedule"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # Its own process group: `-B` runs beat in a child process, which must die with it.
            start_new_session=True,
        )

        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"worker exited early:\n{self.output()}")
            return b" ready." in self.log_path.read_bytes()[start_at:]

        wait_for(ready, timeout=60, interval=0.1, what="the Celery worker to be ready")
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL to the worker and its beat: they die mid-whatever, as in a crash or an OOM
        kill of their container."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=5)
        if self.process:
            self._signal_group(signal.SIGKILL)  # whatever of the group is left
        self.log.close()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


@pytest.fixture
def start_worker(live_server, sandbox, broker, tmp_path):
    workers = []

    def start(**extra_env) -> Worker:
        worker = Worker(
            env=worker_environment(
                live_server=live_server, sandbox=sandbox, tmp_path=tmp_path, extra=extra_env
            ),
            log_path=tmp_path / "worker.log",
        ).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
