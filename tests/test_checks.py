"""Project-wide system checks that are not about deployment (those: test_deploy_check.py)."""

from config import checks

SQLITE = "django.db.backends.sqlite3"


def test_an_embedded_database_too_old_for_the_timeline_is_refused():
    [error] = checks.sqlite_version_errors(SQLITE, (3, 34, 1), "3.34.1")
    assert error.id == "config.E002" and "3.34.1" in error.msg
    assert checks.sqlite_version_errors(SQLITE, (3, 35, 0), "3.35.0") == []


def test_postgresql_is_not_asked(settings):
    engine = "django.db.backends.postgresql"
    assert checks.sqlite_version_errors(engine, (3, 1, 0), "3.1.0") == []
    assert settings.DATABASES["default"]["ENGINE"] == engine
    assert checks.check_sqlite_version(None) == []
