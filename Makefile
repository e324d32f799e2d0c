# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow coverage bench bench-spark accuracy venv spark clean fuzz fuzz-diff

# The package itself (what `make demo` needs); the test extra only for the targets that test.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

# The native engine (native/, Rust): built in release mode and installed when cargo is on PATH;
# without it the Python engine runs, and this says so once.
NATIVE_STAMP := $(VENV)/.installed-native
$(NATIVE_STAMP): $(STAMP) native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs)
	@if command -v cargo > /dev/null 2>&1; then \
		echo "building the native engine (release; a few minutes the first time)"; \
		$(BIN)/pip install --quiet ./native; \
	else \
		echo "the native engine is unavailable (no cargo on PATH): the Python engine runs"; \
	fi
	@touch $(NATIVE_STAMP)

venv: $(NATIVE_STAMP)

# pyspark (about 450 MB) for `anonymizer spark-run` and the Spark test tier; Java 17+ must be on the machine.
SPARK_STAMP := $(VENV)/.installed-spark

$(SPARK_STAMP): $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[test,spark]'
	touch $(SPARK_STAMP)

spark: $(SPARK_STAMP)

# Anonymize the bundled sample log with a fresh key and its roster, then verify that the package
# holds no raw identifier from the log or the roster.
demo: $(NATIVE_STAMP)
	@rm -rf demo && mkdir -p demo
	@$(BIN)/anonymizer keygen --out demo/demo.key > /dev/null
	$(BIN)/anonymizer run examples/tracking.log --roster examples/roster.csv --out demo/package --key-file demo/demo.key
	@echo
	$(BIN)/anonymizer verify demo/package --against examples/tracking.log --roster examples/roster.csv
	@echo
	@echo "The codebook every package carries (demo/package/README.md; codebook.json for programs), in part:"
	@echo
	@sed -n '1,6p' demo/package/README.md
	@grep -A 20 '^## Fields of every event' demo/package/README.md
	@echo "  ..."
	@echo
	$(BIN)/anonymizer risk demo/package | head -12
	@echo
	@echo "The package is in demo/package (key: demo/demo.key). Look inside with:"
	@echo "  zcat demo/package/tracking.log.gz | head -3"
	@echo "  less demo/package/README.md        # the codebook: what was done to every field"
	@echo "  cat demo/package/manifest.json"
	@echo "  .venv/bin/anonymizer risk demo/package   # k-anonymity per course"

# One test process per core (pytest-xdist), each test file kept on one process so that its
# module fixtures (a 60 MB log, a Spark session) are made once. TEST_JOBS=0 runs in one process.
TEST_JOBS ?= auto
test: $(NATIVE_STAMP) $(TEST_STAMP)
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)

# The long property runs (thousands of examples each), kept out of `make test` and CI for time.
test-slow: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m slow

# Line coverage of anonymizer/, the CLI subprocesses and worker processes included.
coverage: $(TEST_STAMP)
	@rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest -q
	@$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report

bench: $(NATIVE_STAMP)
	$(BIN)/python bench/run.py

# spark-run on local[2] against run --jobs 2, on the same generated data (see bench/spark.py).
bench-spark: $(SPARK_STAMP)
	$(BIN)/python bench/spark.py

# Recall and precision of free-text scrubbing with a roster, per kind, on the labelled set.
accuracy: $(TEST_STAMP)
	$(BIN)/python bench/eval_text.py

# The long differential mode: FUZZ_DIFF_EVENTS generated events through both engines (README, Engines).
FUZZ_DIFF_EVENTS ?= 1000000
FUZZ_DIFF_SEED ?= 1
fuzz-diff: $(NATIVE_STAMP) $(TEST_STAMP)
	$(BIN)/python tests/native_fuzz.py --events $(FUZZ_DIFF_EVENTS) --seed $(FUZZ_DIFF_SEED)

# Coverage-guided fuzzing (atheris) of the line path and of the policy loader; see README, Fuzzing.
FUZZ_DIR := build/fuzz
FUZZ_RUNS ?= 1000000
FUZZ_POLICY_RUNS ?= 20000
FUZZ_STAMP := $(VENV)/.installed-fuzz

$(FUZZ_STAMP): $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[test,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	$(BIN)/python tests/fuzz/seeds.py $(FUZZ_DIR)
	FUZZ_REPORT=$(FUZZ_DIR)/line-report.json FUZZ_FINDINGS=$(FUZZ_DIR)/findings $(BIN)/python tests/fuzz/fuzz_line.py \
		-runs=$(FUZZ_RUNS) -dict=$(FUZZ_DIR)/line.dict -artifact_prefix=$(FUZZ_DIR)/ -print_final_stats=1 $(FUZZ_DIR)/line-corpus
	$(BIN)/python tests/fuzz/fuzz_policy.py \
		-runs=$(FUZZ_POLICY_RUNS) -dict=$(FUZZ_DIR)/policy.dict -artifact_prefix=$(FUZZ_DIR)/ -print_final_stats=1 $(FUZZ_DIR)/policy-corpus
	@$(BIN)/python -c "import json; r = json.load(open('$(FUZZ_DIR)/line-report.json')); print(f\"fuzz: no crash; {r['inputs']:,} line inputs, {r['survivors']} leak finding(s) (planted identifiers that survived), by class in $(FUZZ_DIR)/line-report.json\")"

clean:
	rm -rf $(VENV) demo bench/out .pytest_cache .coverage .coverage.* build/fuzz build/fuzz-diff native/target
