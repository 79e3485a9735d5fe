# drem: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export DREM_TRACKS_DIR ?= $(abspath ../shared/tracks)

.PHONY: demo demo-headless demo-scaleout demo-drill test test-sqlite test-postgres setup system venv npm clamd signatures models lint bench clean

setup: system venv npm signatures

system:
	scripts/system-packages.sh

venv: $(VENV)/.installed

# The server, the car client and the development tools: the extras in pyproject.toml.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[server,car,dev]'
	touch $@

npm: node_modules/.installed

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

clamd: setup
	scripts/clamd.sh start

# The official ClamAV databases (freshclam) when the network allows; without it the
# script says so and how to copy .cvd files instead (docs/operations.md). Never fails setup.
signatures: system
	scripts/clamd.sh update || echo "make: no fresh virus signatures; see docs/operations.md ('Virus signatures')"

# Trained demo models (record in the simulator, train, export); cached by recipe hash
# outside the checkout, where `drem demo` looks: $DREM_DEMO_MODELS, else
# ~/.cache/drem/demo-models (drem.platform.config.demo_models_dir says which).
models: setup
	$(PY) -m car_client.training.demo_models --out \
		"$$($(PY) -c 'from drem.platform.config import demo_models_dir; print(demo_models_dir())')"

# The whole demo event on the embedded defaults (SQLite, in-process Socket.IO, local
# storage): clamd, the server, simulated cars; racers upload, the cars race; then it
# keeps serving so a person can run another race by hand.
demo: setup models
	$(VENV)/bin/drem demo --host $${HOST:-127.0.0.1} --port $${PORT:-5000} --racers $${RACERS:-4} --cars $${CARS:-2}

# The same event, faster than real time, printing the final leaderboard and summary.
demo-headless: setup models
	$(VENV)/bin/drem demo --headless --racers 3 --cars 2 --speedup 10

# The same event on the scale-out stack, with this machine's services: PostgreSQL and
# Redis (scripts/services.sh), SeaweedFS as S3 storage, clamd over TCP, two gunicorn
# processes (one gevent worker each) behind HAProxy with sticky sessions (the
# deploy/haproxy.cfg of the compose stack), one `drem worker`. The database
# $(SCALEOUT_DATABASE_URL) is created, or emptied, first.
SCALEOUT_DATABASE_URL ?= postgresql://127.0.0.1:5432/drem_scaleout
SCALEOUT_REDIS_URL ?= redis://127.0.0.1:6379/3
demo-scaleout: setup models
	scripts/services.sh postgres redis
	DATABASE_URL=$(SCALEOUT_DATABASE_URL) REDIS_URL=$(SCALEOUT_REDIS_URL) STORAGE_URL= \
		$(VENV)/bin/drem demo --headless --scaleout --workers 2 --job-workers 1 --reset-database \
		--racers 3 --cars 2 --speedup 10 $(DEMO_ARGS)

# The fault drill during a demo event (network cut 30 s, gunicorn worker killed, car
# client killed and restarted, clamd restarted): bench/drill.py, a test tool outside the
# drem package; DEMO_ARGS=--scaleout runs it on the scale-out stack (with the same
# settings as demo-scaleout).
demo-drill: setup models
	scripts/services.sh postgres redis
	DATABASE_URL=$(if $(findstring --scaleout,$(DEMO_ARGS)),$(SCALEOUT_DATABASE_URL),) \
	REDIS_URL=$(if $(findstring --scaleout,$(DEMO_ARGS)),$(SCALEOUT_REDIS_URL),) STORAGE_URL= \
		$(PY) bench/drill.py --racers 2 --cars 2 --speedup 10 \
		$(if $(findstring --scaleout,$(DEMO_ARGS)),--reset-database,) $(DEMO_ARGS)

# The lint (style and the layer contract), everything on SQLite, then the server-side
# tests again on PostgreSQL + Redis.
test: setup
	$(MAKE) lint
	scripts/services.sh postgres redis
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

# On SQLite every test process has its own instance folder, clamd and servers, so the suite
# runs in TEST_WORKERS processes (pytest-xdist; a test file stays in one process). The
# PostgreSQL run shares one database and stays in one process.
TEST_WORKERS ?= 2
test-sqlite:
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests

test-postgres:
	DATABASE_URL=postgresql://127.0.0.1:5432/test TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
		$(VENV)/bin/pytest -q -p no:cacheprovider tests --ignore=tests/car_client --ignore=tests/e2e

# Style (ruff) and the layer contract in pyproject.toml (import-linter).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) node_modules instance var
