# GateFrames Gateway: `make run` (local stack, offline by default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.runtime-$(shell cat requirements.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
REDIS_PORT ?= 6379
PG_PORT ?= 5432
# The test database (the log's tests run on SQLite and on this PostgreSQL database).
TEST_PG_DB ?= $(or $(GATEFRAMES_TEST_PG_DB),gateframes_test)

.PHONY: run test soak lint format redis postgres migrate venv dev-venv clean browser-deps check-config

# Runtime packages only (what the PaaS installs), for make run.
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.runtime-* && touch $(STAMP)

# Runtime plus the test tools, for make test.
$(DEV_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.runtime-* $(VENV)/.dev-* && touch $(STAMP) $(DEV_STAMP)

venv: $(STAMP)
dev-venv: $(DEV_STAMP)

# Start the machine's Redis when nothing answers on 127.0.0.1:$(REDIS_PORT).
redis: dev-venv
	@$(PY) -c "import redis,sys; redis.Redis(port=$(REDIS_PORT), socket_connect_timeout=1).ping()" 2>/dev/null \
	  || { echo "Redis not answering on 127.0.0.1:$(REDIS_PORT); starting redis-server"; \
	       dir=/var/lib/redis; test -w $$dir || dir=$$(mktemp -d); \
	       redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $(REDIS_PORT) --save "" \
	         --appendonly no --dir $$dir --logfile $$dir/redis-gateframes.log; \
	       for i in $$(seq 50); do $(PY) -c "import redis; redis.Redis(port=$(REDIS_PORT)).ping()" 2>/dev/null && break; sleep 0.1; done; }

# Start the machine's PostgreSQL (Debian's cluster) when nothing answers on 127.0.0.1:$(PG_PORT);
# the tests connect as postgres with trust auth on 127.0.0.1, so a cluster installed here is
# given that rule. Then create the test database when it is missing.
postgres:
	@pg_isready -q -h 127.0.0.1 -p $(PG_PORT) 2>/dev/null \
	  || { echo "PostgreSQL not answering on 127.0.0.1:$(PG_PORT); starting the machine's cluster"; \
	       test -d /etc/postgresql || { apt-get install -y -q postgresql >/dev/null \
	         && conf=$$(ls -d /etc/postgresql/*/main | tail -1) \
	         && sed -i 's/^host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\S\+/host all all 127.0.0.1\/32 trust/' $$conf/pg_hba.conf; }; \
	       pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -n | tail -1) main start; \
	       for i in $$(seq 50); do pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && break; sleep 0.2; done; }
	@psql -h 127.0.0.1 -p $(PG_PORT) -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$(TEST_PG_DB)'" | grep -q 1 \
	  || createdb -h 127.0.0.1 -p $(PG_PORT) -U postgres $(TEST_PG_DB)

# The call log's schema at DATABASE_URL (a SQLite file under var/ when unset).
migrate: venv
	APP_ENV=$${APP_ENV:-development} $(PY) -m store migrate

run: venv migrate
	$(PY) -m sandbox.run

# The browser test drives Debian's Chromium with a fake microphone fed by espeak-ng.
browser-deps:
	@command -v chromium >/dev/null && command -v espeak-ng >/dev/null \
	  || { echo "installing Debian's chromium and espeak-ng for the browser test"; \
	       apt-get install -y -q chromium espeak-ng >/dev/null || sudo apt-get install -y -q chromium espeak-ng >/dev/null; }

test: redis postgres browser-deps
	GATEFRAMES_TEST_PG_DB=$(TEST_PG_DB) $(PY) -m pytest -m "not soak" -q

soak: redis postgres
	$(PY) -m pytest -m soak -q -rP  # -rP: print the figures the soaks measured

lint: dev-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: dev-venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The release-phase check: every bad variable named, non-zero exit.
check-config: venv
	$(PY) -m common.config check

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
