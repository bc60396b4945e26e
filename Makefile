# Two commands do everything on a fresh machine:  make demo  and  make test.
# Both create .venv if it is missing and install what is needed (fast when it is already there).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.aisec-lab-installed
PIP_FLAGS ?= --disable-pip-version-check -q

.PHONY: install demo test test-fast clean-venv

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

clean-venv:
	rm -rf $(VENV)
