"""Project-wide system checks that are not about deployment (those: test_deploy_check.py)."""

import sqlite3

from config import checks


def test_an_embedded_database_too_old_for_the_timeline_is_refused(settings, monkeypatch):
    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}}
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    [error] = checks.check_sqlite_version(None)
    assert error.id == "config.E002" and "3.34.1" in error.msg

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 35, 0))
    assert checks.check_sqlite_version(None) == []


def test_postgresql_is_not_asked(settings, monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 1, 0))
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert checks.check_sqlite_version(None) == []
