# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo web-demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# pip compiles the bytecode of what it installs, but not of an editable project:
	@# compiled now, every `tminus` process starts sooner even where PYTHONDONTWRITEBYTECODE
	@# keeps Python from caching it (a rehearsal's 55 modules: ~0.15 s to compile, 0.01 s to load)
	$(BIN)/python -m compileall -q scheduler content jobs
	touch $@

# A one-minute countdown campaign on SQLite, sent through the dry-run adapter.
demo: $(BIN)/.installed
	$(BIN)/tminus demo

# The web dashboard on a ten-minute demo countdown: log in as Demo, password "demo password".
web-demo: $(BIN)/.installed
	@printf 'demo password\n' | $(BIN)/tminus users add Demo --role admin --by make-web-demo 2>/dev/null || true
	@echo "log in at http://127.0.0.1:8000/ as Demo, password: demo password (Ctrl-C stops)"
	@$(BIN)/tminus demo --seconds 600 > tminus-demo.log 2>&1 & demo=$$!; \
	  trap 'kill $$demo 2>/dev/null' EXIT INT TERM; $(BIN)/tminus web

# The whole suite: what it needs from Debian (scripts/test-prereqs installs it or says
# what to install), then ruff, pytest (unit, CLI, fake-platform, browser and
# end-to-end tests) and mypy. pytest runs on TEST_WORKERS processes (pytest-xdist): most
# tests wait (fake platforms' latencies, daemons in subprocesses, a browser), so more
# workers than the CI machine's two cores; `--dist loadgroup` keeps each xdist_group
# (the benchmark's quick run) on one worker. The chaos tests run afterwards on their own:
# they pace real daemons against the real clock, and beside three busy workers on two
# cores their daemons fell behind and posts expired (every such run here failed; alone
# they pass).
TEST_WORKERS ?= 4

test: $(BIN)/.installed
	scripts/test-prereqs
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --ignore=tests/test_chaos.py
	$(BIN)/pytest tests/test_chaos.py
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tminus.db tminus.db-wal tminus.db-shm outbox.jsonl tminus-demo tminus-demo.log
