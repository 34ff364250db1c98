# The two commands a newcomer needs: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# The suite's real services; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/concernline
TEST_CELERY_BROKER_URL ?= redis://127.0.0.1:6379/15
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_CELERY_BROKER_URL) \
	DEBUG=0 SECRET_KEY=test-only-secret-key-not-for-any-deployment-0123456789abcdef \
	FIELD_ENCRYPTION_KEYS=SSesiuulUOUFIUXJWML-h3zJwz2DbSJWeZYw-21aUj0= \
	VAR_DIR=$(CURDIR)/var/test

.PHONY: install run test lint sandbox

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## Run the app on the embedded default: SQLite, Celery over the filesystem broker, the Twilio
## sandbox as the phones, demo data. Ctrl-C stops everything.
run: install
	PY=$(PY) scripts/run-dev

# Test-only tools from npm, pinned in package-lock.json: axe-core for the accessibility checks.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## Run the whole suite against real PostgreSQL and Redis (they must be running).
test: install lint node_modules/.installed
	$(TEST_ENV) $(PY) manage.py collectstatic --noinput -v0
	$(TEST_ENV) $(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DEBUG=1 VAR_DIR=$(CURDIR)/var/test $(PY) manage.py makemigrations --check --dry-run

## The Twilio sandbox on its own (phone simulator at http://127.0.0.1:8026/).
sandbox: install
	$(PY) -m notifications.sandbox
