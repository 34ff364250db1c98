"""No Docker engine runs here, so this keeps docker-compose.yml honest instead: the services,
their commands and health checks must agree with the settings and the Makefile."""

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
    assert "gunicorn config.wsgi:application" in command_of(services["web"])
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
