"""The documented backup and restore, run once on a scratch database."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from incidents import access
from incidents.models import AccessAction, ReportKind
from incidents.services import submit_report
from tests.conftest import database_url_for_subprocess, subprocess_environment

ROOT = Path(__file__).resolve().parents[1]
# One scratch database per test process, so runs side by side never drop each other's.
SCRATCH = f"concernline_restore_check_{os.getpid()}"


@pytest.fixture
def scratch_database():
    base = database_url_for_subprocess().rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {SCRATCH}")
    yield f"{base}/{SCRATCH}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


def run(script: str, argument: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / script), argument],
        env=subprocess_environment(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_backup_then_restore_into_a_scratch_database(people, rota, tmp_path, scratch_database):
    case = submit_report(
        reporter=people["worker"],
        kind=ReportKind.URGENT_DISCLOSURE,
        narrative="Kept across a restore.",
        grounds=["crime"],
    )
    access.log_access(
        user=people["manager"],
        case=case,
        action=AccessAction.VIEW,
        basis=access.Basis.OWNER,
        request=None,
    )
    dump = tmp_path / "concernline.dump"

    backed_up = run("backup", str(dump), database_url_for_subprocess())
    assert backed_up.returncode == 0, backed_up.stderr
    restored = run("restore", str(dump), scratch_database)
    assert restored.returncode == 0, restored.stderr

    with psycopg.connect(scratch_database) as restored_db:
        row = restored_db.execute(
            "SELECT kind FROM incidents_case WHERE reference = %s", [case.reference]
        ).fetchone()
        events = restored_db.execute(
            "SELECT count(*) FROM incidents_timelineevent WHERE case_id = %s", [case.id]
        ).fetchone()[0]
    assert row == (ReportKind.URGENT_DISCLOSURE,)
    assert events == case.timeline.count() > 0

    # The restored copy's audit chains verify, as the README asks after every restore.
    verified = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_audit"],
        env=subprocess_environment(DATABASE_URL=scratch_database),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK:"), verified.stdout

    # The restored audit tables are still append-only: their triggers came across too.
    for table in ("incidents_timelineevent", "incidents_accesslogentry"):
        with psycopg.connect(scratch_database) as restored_db:
            assert restored_db.execute(
                f"SELECT count(*) FROM {table} WHERE case_id = %s", [case.id]
            ).fetchone()[0]
            with pytest.raises(
                psycopg.errors.InsufficientPrivilege, match="never changed or deleted"
            ):
                restored_db.execute(
                    f"UPDATE {table} SET case_id = case_id WHERE case_id = %s", [case.id]
                )

    again = run("restore", str(dump), scratch_database)
    assert again.returncode == 2 and "refusing" in again.stderr
