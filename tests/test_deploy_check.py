"""`manage.py check --deploy` with DEBUG off reports nothing, and refuses to start without a
SECRET_KEY rather than run on a guessable one."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_environment

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_FIELD_KEY = "WG9iWHcyb2FzZ0lUbDJ3c3V6S0x5cU1pd1RqZm9yc0E="  # a valid Fernet key


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in subprocess_environment().items() if k not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_SECRET = "k" * 10 + "-production-like-key-with-plenty-of-entropy-3f9a2b7c1d"


def deploy_check(tmp_path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    """`check --deploy` as production runs it: DEBUG off, a real SECRET_KEY, plus `env`."""
    return run_manage(
        "check",
        "--deploy",
        *extra,
        **{"DEBUG": "0", "SECRET_KEY": PRODUCTION_SECRET, "VAR_DIR": str(tmp_path), **env},
    )


def test_deploy_check_is_clean_in_production_settings(tmp_path):
    result = deploy_check(
        tmp_path,
        "--fail-level",
        "WARNING",
        ALLOWED_HOSTS="concernline.example",
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID="AC" + "2" * 32,
        TWILIO_AUTH_TOKEN="token",
        TWILIO_FROM_NUMBER="+447700900000",
        PUBLIC_BASE_URL="https://concernline.example",
        FIELD_ENCRYPTION_KEYS=PRODUCTION_FIELD_KEY,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_twilio_without_credentials_fails_the_deploy_check(tmp_path):
    result = deploy_check(
        tmp_path,
        SMS_BACKEND="twilio",
        TWILIO_AUTH_TOKEN="",
    )
    assert result.returncode != 0
    assert "notifications.E001" in result.stderr and "notifications.C001" in result.stderr


def test_switching_off_the_second_factor_is_critical(tmp_path):
    result = deploy_check(
        tmp_path,
        SECOND_FACTOR_REQUIRED="0",
    )
    assert result.returncode != 0 and "staff.C001" in result.stderr


def test_no_secret_key_outside_debug_is_a_clear_error(tmp_path):
    result = run_manage("check", "--deploy", DEBUG="0", VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "config.E001" in result.stderr and "SECRET_KEY is not set" in result.stderr
    # Commands that sign nothing still run without it.
    assert (
        run_manage(
            "makemigrations", "--check", "--dry-run", DEBUG="0", VAR_DIR=str(tmp_path)
        ).returncode
        == 0
    )


def test_no_encryption_keys_in_production_is_critical(tmp_path):
    result = deploy_check(
        tmp_path,
        FIELD_ENCRYPTION_KEYS="",
    )
    assert result.returncode != 0
    assert "incidents.C001" in result.stderr and "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_a_malformed_encryption_key_is_critical(tmp_path):
    result = deploy_check(
        tmp_path,
        FIELD_ENCRYPTION_KEYS=f"{PRODUCTION_FIELD_KEY},not-a-key",
    )
    assert result.returncode != 0 and "incidents.C002" in result.stderr
