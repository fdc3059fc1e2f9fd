# Two commands do all the set-up: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch==2.13.0 first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,imagenet]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/foolkit demo

# mypy first (settings in pyproject.toml): a type error fails in seconds, before the suite runs
test: $(STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache
