"""No Docker engine runs here, so this keeps docker-compose.yml honest instead: the services,
their commands and health checks must agree with the settings and the Makefile."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_of(service) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_the_stack_has_its_five_services_each_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name


def test_app_services_use_postgres_and_redis_and_wait_for_them(compose):
    for name in ("web", "worker", "beat"):
        service = compose["services"][name]
        env = service["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgres://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
        assert env["CACHE_URL"].startswith("redis://redis:6379/")
        assert env["CACHE_URL"] != env["CELERY_BROKER_URL"]
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }


def test_commands_match_the_app(compose):
    services = compose["services"]
    # The server's settings are gunicorn.conf.py's alone, as in the image and the benchmark.
    assert (
        command_of(services["web"]).strip().rstrip('"').endswith("gunicorn config.wsgi:application")
    )
    assert "manage.py migrate" in command_of(services["web"])
    worker = command_of(services["worker"])
    assert worker.startswith("celery -A config worker")
    queues = set(worker.split("-Q ")[1].split()[0].split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} == queues
    assert command_of(services["beat"]).startswith("celery -A config beat")


def test_the_worker_queues_are_the_ones_make_run_starts(compose):
    run_dev = (ROOT / "scripts" / "run-dev").read_text()
    worker = command_of(compose["services"]["worker"])
    assert "-Q paging,default" in worker and "-Q paging,default" in run_dev


def test_the_image_runs_the_web_server_as_compose_does():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "config.wsgi:application"]' in dockerfile
    assert "WORKDIR /app" in dockerfile  # where gunicorn finds gunicorn.conf.py


def gunicorn_settings(**environ) -> dict[str, str]:
    """What gunicorn itself makes of gunicorn.conf.py, started from the project's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEB_")}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "config.wsgi:application"],
        cwd=ROOT,
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {
        name.strip(): value.strip()
        for name, _, value in (line.partition("=") for line in result.stdout.splitlines())
    }


def test_the_web_server_keeps_a_thread_per_request_not_a_process():
    # A slow phone holds one of sixteen threads, not one of a few processes.
    assert {
        name: value
        for name, value in gunicorn_settings().items()
        if name in {"bind", "workers", "threads", "worker_class", "keepalive"}
    } == {
        "bind": "['0.0.0.0:8000']",
        "workers": "1",
        "threads": "16",
        "worker_class": "gthread",
        "keepalive": "5",
    }


def test_the_web_server_sizes_come_from_the_environment():
    settings_ = gunicorn_settings(WEB_BIND="127.0.0.1:9000", WEB_CONCURRENCY="3", WEB_THREADS="1")
    assert settings_["bind"] == "['127.0.0.1:9000']"
    assert settings_["workers"] == "3"
    assert settings_["worker_class"] == "sync"


def test_a_web_server_with_no_threads_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEB_")}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "config.wsgi:application"],
        cwd=ROOT,
        env={**env, "WEB_THREADS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "WEB_THREADS must be at least 1, not 0" in result.stderr
