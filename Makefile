# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.astroml-installed
DEMO_OUT ?= demo_output

.PHONY: install demo test docs tox benchmarks clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,test,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/astroml-affiliated demo --output $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest --run-slow

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

tox: $(STAMP)
	$(BIN)/python -m pip install --quiet tox
	$(BIN)/tox

benchmarks: $(STAMP)
	@echo "Benchmarks run one at a time, on demand: they need ../shared/data (and stella's"
	@echo "models for the flare comparisons). Commands: benchmarks/README.md"

clean:
	rm -rf $(VENV) .tox build dist *.egg-info docs/_build docs/api $(DEMO_OUT)
