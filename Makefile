# Phoenix's two front doors: `make demo` and `make test`. Both set up
# everything first (a virtualenv in .venv, the package with dev extras, and
# the real components via `make tools`), reusing what is already there.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PHOENIX_TOOLS_DIR ?= $(HOME)/.cache/phoenix/tools

.PHONY: help venv tools demo-tools lint test unit integration e2e demo crds bench calibrate fuzz clean

help:
	@echo "make demo   set everything up and run the quickstart experiment locally"
	@echo "make test   set everything up and run lint, types, import contracts and every test"
	@echo "make tools  build or install otelcol-phoenix, etcd, kube-apiserver and the test bed, telemetrygen, kube-score, prometheus"
	@echo "make demo-tools  only what make demo runs: otelcol-phoenix and prometheus"
	@echo "make crds   regenerate crds/ from the models"
	@echo "make calibrate  the verdict's calibration with 5,000 simulations per rate (about 35 minutes)"
	@echo "make fuzz   the fuzz tests with 20,000 random inputs each instead of the suite's seeded few (minutes)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

tools:
	bash tools/install-all.sh

# the demo runs only the collector and Prometheus; the test bed's Kubernetes parts are for make test
demo-tools:
	bash tools/install-demo.sh

crds: venv
	$(BIN)/phoenix crds generate

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/phoenix crds generate --check

unit: venv
	$(BIN)/pytest tests/unit

integration: venv tools
	$(BIN)/pytest tests/integration

e2e: venv tools
	$(BIN)/pytest tests/e2e

# pytest exits 5 when it collected nothing; that must fail, and it does,
# because only exit code 0 passes here. Three runs, each printing its slowest
# tests, and every one runs even when another failed, so a red run shows all
# its failures:
# - the integration and e2e files on four workers, each taking whole files
#   (a file's module fixtures, such as one_driver's scenarios, run once, in
#   one worker). At most three files of real experiments run at once
#   (tests/conftest.py); the other workers take the rest, which mostly wait on
#   the control plane;
# - meanwhile the unit tests, one worker per core, at the lowest CPU priority:
#   they are CPU-bound, and take only the CPU the experiments leave idle. Their
#   report is printed when both runs have ended;
# - the tests marked alone, one at a time: they need the machine to itself
#   (the full-size quickstart held to its numbers, as `make demo` runs it, and
#   a collector flooded past its limit).
test: venv tools lint
	@failed=0; unit_report=$$(mktemp); \
	trap 'kill $$unit 2>/dev/null; rm -f $$unit_report' EXIT; trap 'exit 130' INT TERM; \
	echo "unit tests: running at the lowest CPU priority beside the integration and e2e tests; their report follows them"; \
	nice -n 19 $(BIN)/pytest -n 2 -m "not alone" tests/unit > $$unit_report 2>&1 & unit=$$!; \
	$(BIN)/pytest -n 4 --dist loadfile --no-loadscope-reorder -m "not alone" tests/integration tests/e2e || failed=1; \
	wait $$unit || failed=1; cat $$unit_report; \
	$(BIN)/pytest -m alone tests || failed=1; \
	exit $$failed

demo: venv demo-tools
	$(BIN)/phoenix run --local -f examples/quickstart/experiment.yaml --report phoenix-report.html

bench: venv tools
	@for b in loadsim_vs_telemetrygen time_to_verdict analyze_speed measurement_cost recommend_speed; do \
		echo "== bench/$$b.py"; $(BIN)/python -m bench.$$b || exit 1; done

# The suite's calibration runs 500 simulations per rate; this one runs enough
# that the Monte-Carlo tolerance is under 0.01, and prints each measured rate.
calibrate: venv
	PHOENIX_CALIBRATION_SIMULATIONS=5000 $(BIN)/pytest -s -q -p no:cacheprovider tests/unit/analysis/test_calibration.py

# make test runs the fuzz tests short and seeded; this runs them long, with fresh random inputs.
fuzz: venv tools
	PHOENIX_FUZZ_EXAMPLES=$${PHOENIX_FUZZ_EXAMPLES:-20000} $(BIN)/pytest -s -q -p no:cacheprovider tests/unit/test_fuzz.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
