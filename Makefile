# madn: the two commands a new user types are `make demo` and `make test`.
# Both create .venv if it is missing and install everything into it first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints.txt

.PHONY: install demo test lint format bench evaluation quality quality-seeds clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: 2.13.0 resolves to the CPU wheel on this machine's disk.
	$(PIP) install --quiet --constraint $(CONSTRAINTS) torch==2.13.0
	$(PIP) install --quiet --constraint $(CONSTRAINTS) --editable '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/madn demo

# Two pytest workers, each taking whole test files (module fixtures such as the local cluster are
# built once); about 35% of the 2 cores sat idle in a one-process run. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) bench/similarity.py
	$(PY) bench/train_step.py
	$(PY) bench/mar.py
	$(PY) bench/loader.py
	$(PY) bench/ingest.py
	$(PY) bench/tune_overhead.py

# the evaluation in docs/evaluation.md (about 20 minutes on 2 CPU cores)
evaluation: $(STAMP)
	MADN=$(VENV)/bin/madn bash bench/evaluation.sh

# the quality benchmark (docs/quality.md): trains the four variants with one recipe and tests
# them against No MAR, LI and NMAR (44 minutes on 2 CPU cores, 2026-12-07, partly shared; STEPS, WIDTH, SIZE, ... scale it)
quality: $(STAMP)
	$(PY) bench/quality.py

# the same over several training seeds (one run each, the data shared), then every target per
# seed with mean +- sd and the seeds passing (bench/seed_summary.py; docs/quality_seeds.md:
# about 42 min a seed on 2 idle CPU cores, plus 1.5 min of synthesis, 2026-12-08). A seed that
# misses a target goes on to the next.
SEEDS ?= 7 1 2
QUALITY_SEEDS_OUT ?= runs/quality_seeds
quality-seeds: $(STAMP)
	for seed in $(SEEDS); do \
	  data=$$(ls -d $(QUALITY_SEEDS_OUT)/seed*/cache/* 2>/dev/null | head -n 1); \
	  SEED=$$seed DATA=$$data OUT=$(QUALITY_SEEDS_OUT)/seed$$seed $(PY) bench/quality.py; \
	done; \
	$(PY) bench/seed_summary.py $(foreach s,$(SEEDS),$(QUALITY_SEEDS_OUT)/seed$(s)) \
	  --out $(QUALITY_SEEDS_OUT)/seeds.md --figure $(QUALITY_SEEDS_OUT)/seeds.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
