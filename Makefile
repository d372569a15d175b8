# GateFrames Gateway: `make run` (local stack, offline by default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
REDIS_PORT ?= 6379

.PHONY: run test soak lint format redis venv clean browser-deps

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# Start the machine's Redis when nothing answers on 127.0.0.1:$(REDIS_PORT).
redis: venv
	@$(PY) -c "import redis,sys; redis.Redis(port=$(REDIS_PORT), socket_connect_timeout=1).ping()" 2>/dev/null \
	  || { echo "Redis not answering on 127.0.0.1:$(REDIS_PORT); starting redis-server"; \
	       dir=/var/lib/redis; test -w $$dir || dir=$$(mktemp -d); \
	       redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $(REDIS_PORT) --save "" \
	         --appendonly no --dir $$dir --logfile $$dir/redis-gateframes.log; \
	       for i in $$(seq 50); do $(PY) -c "import redis; redis.Redis(port=$(REDIS_PORT)).ping()" 2>/dev/null && break; sleep 0.1; done; }

run: venv
	$(PY) -m sandbox.run

# The browser test drives Debian's Chromium with a fake microphone fed by espeak-ng.
browser-deps:
	@command -v chromium >/dev/null && command -v espeak-ng >/dev/null \
	  || { echo "installing Debian's chromium and espeak-ng for the browser test"; \
	       apt-get install -y -q chromium espeak-ng >/dev/null || sudo apt-get install -y -q chromium espeak-ng >/dev/null; }

test: redis browser-deps
	$(PY) -m pytest -m "not soak" -q

soak: redis
	$(PY) -m pytest -m soak -q -rP  # -rP: print the figures the soaks measured

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
