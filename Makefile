# Two commands do everything on a fresh machine:  make demo  and  make test.
# Both create .venv if it is missing and install what is needed (fast when it is already there).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.aisec-lab-installed
PIP_FLAGS ?= --disable-pip-version-check -q

.PHONY: install demo test test-fast bench bench-quick clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install $(PIP_FLAGS) --upgrade "pip>=24"
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e ".[all]"
	@touch $(STAMP)

install: $(STAMP)

# runs notebooks/01_scorecard.ipynb under papermill (its default parameters: digits_cnn, standard preset) into
# runs/demo/ and prints where the executed notebook, scorecard.html and scorecard.json are
demo: $(STAMP)
	$(PY) -m aisec_lab.notebooks 01_scorecard runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

# Benchmarks (not tests): ratios against ART, torchattacks and hand-written loops; see benchmarks/README.md.
# Their peers are installed into the venv here, never as package dependencies: torchattacks with --no-deps
# (otherwise it pulls a CUDA torch), multiprocess because ART's AutoAttack imports it without declaring it.
BENCH_PEERS := $(VENV)/.aisec-lab-bench-peers
BENCH_ARGS ?=

$(BENCH_PEERS): $(STAMP)
	@$(PY) -c "import torchattacks" 2>/dev/null || $(PY) -m pip install $(PIP_FLAGS) --no-deps "torchattacks==3.5.1"
	@$(PY) -c "import multiprocess" 2>/dev/null || $(PY) -m pip install $(PIP_FLAGS) "multiprocess==0.70.19" "dill==0.4.1"
	@touch $(BENCH_PEERS)

# the full suite (under 30 minutes on 2 cores): writes benchmarks/results/latest.json
bench: $(BENCH_PEERS)
	$(PY) -m benchmarks $(BENCH_ARGS)

# the smaller suite (under 5 minutes): every row, smaller workloads; writes benchmarks/results/latest-quick.json
bench-quick: $(BENCH_PEERS)
	$(PY) -m benchmarks --quick $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
