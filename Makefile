# Gatecheck: `make run` serves the app on SQLite, `make test` runs every test.
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py

.PHONY: run test test-fast serve demo lint bench clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || { PYTHON=$$(bin/find-python) && "$$PYTHON" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(MANAGE) migrate --noinput
	$(MANAGE) runserver 127.0.0.1:8000

test: $(VENV)/.installed
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest -q

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not browser"

serve: $(VENV)/.installed
	DJANGO_SETTINGS_MODULE=config.settings.production $(MANAGE) collectstatic --noinput
	DJANGO_SETTINGS_MODULE=config.settings.production $(MANAGE) migrate --noinput
	DJANGO_SETTINGS_MODULE=config.settings.production $(VENV)/bin/gunicorn config.wsgi:application \
		--no-control-socket --bind $${GATECHECK_BIND:-127.0.0.1:8000} --workers $${GATECHECK_WORKERS:-2}

demo: $(VENV)/.installed
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 db.sqlite3-wal db.sqlite3-shm
