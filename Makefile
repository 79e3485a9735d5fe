# drem: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export DREM_TRACKS_DIR ?= $(abspath ../shared/tracks)

.PHONY: demo test test-sqlite test-postgres setup system venv npm clamd models lint bench clean

setup: system venv npm

system:
	scripts/system-packages.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	$(PIP) install -q --no-deps -e .
	touch $@

npm: node_modules/.installed

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

clamd: setup
	scripts/clamd.sh start

models: setup
	$(PY) -m car_client.training.demo_models --out var/demo-models

# The whole demo event on the embedded defaults (SQLite, in-process Socket.IO, local storage).
demo: setup clamd
	$(VENV)/bin/drem init --admin-password "$${DREM_ADMIN_PASSWORD:-drem-admin}"
	$(VENV)/bin/drem seed-demo
	$(VENV)/bin/drem run --host 0.0.0.0 --port $${PORT:-5000}

# Everything on SQLite, then the server-side tests again on PostgreSQL + Redis.
test: setup
	scripts/services.sh postgres redis
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite:
	$(VENV)/bin/pytest -q -p no:cacheprovider tests

test-postgres:
	DATABASE_URL=postgresql://127.0.0.1:5432/test TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
		$(VENV)/bin/pytest -q -p no:cacheprovider tests --ignore=tests/car_client

lint:
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules instance var
