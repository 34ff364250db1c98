"""Browser tests in real headless Chromium (Debian's package, driven by Playwright) against the
live server, at a phone's viewport."""

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}

# Playwright's sync API keeps an event loop on this thread for the whole session; the ORM calls
# the tests make between browser steps are plain synchronous calls. (Subprocesses the suite
# starts drop this variable: see tests/conftest.py, HARNESS_ONLY_ENV.)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path):
    """Where screenshots go: docs/screenshots with UPDATE_SCREENSHOTS=1 (for the README),
    otherwise a temporary folder, so a test run leaves the tree as it found it."""
    return DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()
