# Every target does its own set-up on a fresh machine (Python venv, control-plane binaries).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv controlplane demo test e2e lint bench clean

help:
	@echo "make demo    - build what is needed, then run the controller against a real local API server"
	@echo "make test    - set up everything and run the whole test suite"
	@echo "make e2e     - end to end on a real kind cluster (Docker engine, images, chart, host mode)"
	@echo "make lint    - ruff, shellcheck, actionlint, hadolint, helm lint"
	@echo "make bench   - benchmarks (figures and plots into docs/benchmarks/)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

controlplane:
	bash scripts/build-controlplane.sh

demo: venv controlplane
	$(PY) -m scripts.demo

test: venv controlplane
	cd tests/e2e/tools/runc-wrapper && go test ./...
	cd tests/e2e/tools/tyk-standin && go test ./...
	$(PY) -m pytest --durations=25

e2e: venv controlplane
	bash scripts/e2e/run.sh

lint: venv controlplane
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck scripts/*.sh scripts/e2e/*.sh tests/e2e/images/*.sh examples/tyk/*.sh
	$(VENV)/bin/hadolint Dockerfile
	"$$(bash scripts/build-controlplane.sh --print)/actionlint" .github/workflows/*.yaml
	"$$(bash scripts/build-controlplane.sh --print)/helm" lint --strict chart

bench: venv controlplane
	$(PY) -m bench --results docs/benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info bench/results
