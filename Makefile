# One-command set-up and the daily targets. `make quickstart` and `make test` run `make setup`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# A matching torch/torchvision pair that lies on the build machine's disk (see README).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Headless GL for MuJoCo; Chromium and Xvfb let the viewer tests look at what a person sees.
APT_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 chromium-headless-shell xvfb xdotool
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: setup quickstart test test-fast bench lint clean apt

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(MAKE) --no-print-directory apt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q -e '.[dev]' $(TORCH_PINS)
	@touch $(STAMP)
	@echo "setup: $(VENV) is ready"

# The system packages above; installed only when
# missing and only when we may (root), so a second run is instant.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "apt: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "apt: missing$$missing (run 'make apt' as root)"; fi; \
	fi

quickstart: setup
	$(VENV)/bin/robopolicy quickstart

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Speed benchmarks; each measures its named peer in the same run (robosuite in its own venv).
bench: setup
	bash benchmarks/peers/setup_robosuite.sh
	$(PY) benchmarks/sim_throughput.py
	$(PY) benchmarks/collect_throughput.py
	$(PY) benchmarks/policy_speed.py
	$(PY) benchmarks/dataloader.py
	$(PY) benchmarks/eval_throughput.py
	$(PY) benchmarks/gaussian_render.py

lint: setup
	$(VENV)/bin/ruff check robopolicy sims tests benchmarks

clean:
	rm -rf $(VENV) outputs .pytest_cache
