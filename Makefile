# Gatecheck: `make run` serves the app on SQLite with a task worker and the
# scheduler, `make test` runs every test (installing Chromium if it can).
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py

.PHONY: run test test-fast serve worker scheduler demo lint bench bench-firm chaos clean

# Production-style processes read production settings unless told otherwise.
PROD := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.production}

# A development checkout installs the runtime and the test tools; production
# installs requirements.txt alone (no pytest, Playwright or ruff).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || { PYTHON=$$(bin/find-python) && "$$PYTHON" -m venv $(VENV); }
	@echo "Installing Python packages into $(VENV) (requirements-dev.txt: Django, the test tools and Playwright; about a minute the first time)..."
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# The web server, one task worker (e-mail, reminders, nightly scores) and the
# scheduler that enqueues the periodic jobs, together; Ctrl-C stops all three.
# PORT=8001 make run serves on another port.
PORT ?= 8000
run: $(VENV)/.installed
	@$(MANAGE) migrate --noinput
	@GATECHECK_WEBAUTHN_ORIGINS=$${GATECHECK_WEBAUTHN_ORIGINS:-http://localhost:$(PORT)} \
		RUN_PYTHON=$(PY) RUN_NOTICE_PORT=$(PORT) RUN_NOTICE="Gatecheck is up: open http://localhost:$(PORT)/ (localhost, not 127.0.0.1, for the authenticator and passkeys). Ctrl-C stops it." \
		exec bin/run-together "$(MANAGE) runserver 127.0.0.1:$(PORT)" "$(MANAGE) worker --interval 2" "$(MANAGE) scheduler"

# Outside clients the tests run as their own processes (tests/clients), in a
# virtualenv of their own: their pins need not agree with the app's.
CLIENTS := $(VENV)/clients
$(CLIENTS)/.installed: tests/clients/requirements.txt $(VENV)/.installed
	@test -x $(CLIENTS)/bin/python || { PYTHON=$$(bin/find-python) && "$$PYTHON" -m venv $(CLIENTS); }
	@$(CLIENTS)/bin/python -m pip install --quiet -r tests/clients/requirements.txt
	@touch $@

# The OpenID provider the single sign-on tests run as its own process (tests/idp).
IDP := tests/idp/node_modules/.installed
$(IDP): tests/idp/package-lock.json
	@npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
	@touch $@

test: $(VENV)/.installed $(CLIENTS)/.installed $(IDP)
	@bin/ensure-chromium
	@bin/ensure-axe
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest -q

test-fast: $(VENV)/.installed $(CLIENTS)/.installed $(IDP)
	$(PY) -m pytest -q -m "not browser"

serve: $(VENV)/.installed
	DJANGO_SETTINGS_MODULE=config.settings.production $(MANAGE) collectstatic --noinput
	DJANGO_SETTINGS_MODULE=config.settings.production $(MANAGE) migrate --noinput
	DJANGO_SETTINGS_MODULE=config.settings.production $(VENV)/bin/gunicorn config.wsgi:application \
		--no-control-socket --bind $${GATECHECK_BIND:-127.0.0.1:8000} --workers $${GATECHECK_WORKERS:-2}

# Run as many workers as the load needs, on as many machines (PostgreSQL hands
# each task to one worker, and a dead worker's task to another); one
# scheduler is enough, and a second one enqueues nothing twice.
worker: $(VENV)/.installed
	$(PROD) $(MANAGE) worker

scheduler: $(VENV)/.installed
	$(PROD) $(MANAGE) scheduler

demo: $(VENV)/.installed
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# 500 traders: pages, ping, sweep, jobs, and the ping over HTTP (gunicorn + wrk).
bench: $(VENV)/.installed
	$(PY) bench/run.py --jobs

# A firm of 50,000 traders with a year of history, on SQLite, then on
# PostgreSQL (a throwaway database on the server in BENCH_DATABASE_URL, created
# and dropped by the run). Needs about 20 GB of free disk and about half an
# hour per database. Both runs include the ping and the sweep; the HTTP part
# needs wrk (apt-get install wrk) and is skipped without it.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/gatecheck_bench
bench-firm: $(VENV)/.installed
	$(PY) bench/run.py --traders 50000 --days 365 --runs 15 --jobs
	$(PY) bench/run.py --traders 50000 --days 365 --runs 15 --jobs --database-url $(BENCH_DATABASE_URL)

# The fault run of "Gatecheck watches itself" at 5,000 traders (at most 10
# minutes): killed workers, a silent mail server, a database outage (on the
# PostgreSQL leg), two schedulers; its last line is `chaos: lost=N duplicated=N stuck=N`.
chaos: $(VENV)/.installed
	$(PY) bench/chaos.py --traders 5000

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 db.sqlite3-wal db.sqlite3-shm
