# Two entry points do all the set-up on a fresh machine:
#   make reproduce   runs the notebooks (default: quick profile, embedded data) into reports/
#   make test        runs the test suite
# Both create .venv with the pinned environment when it is absent.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= quick
SEED ?= 0
# More training seeds on the same data, e.g. SEEDS="0 1 2" (README: "Results of a quick run").
SEEDS ?=
DEVICE ?= auto
# DRY_RUN=1: the profile's code path on a handful of images and a few iterations per stage, e.g.
# PROFILE=paper on the CPU in minutes (reports/<profile>-dry-run; its numbers mean nothing).
DRY_RUN ?=
# GPUS=N: N processes (one per GPU) train each image-branch run and the 2D model under torchrun (README: "GPU and several GPUs").
GPUS ?= 1
PYTEST_ARGS ?=
# Real data and weights (README: "Real data"): empty means the embedded benchmark and the
# packaged ImageNet weights of the profile's backbone (or a synthetic stand-in where there are none).
DATA_DIR ?=
SMIL ?=
POSE2D_CHECKPOINT ?=
POSE2D_CONFIG ?=
PRETRAINED ?=
# Files are read as data only (SECURITY.md); 1 is the opt-in to unpickle that file fully, for a legacy file you vouch for.
TRUST_SMIL ?=
TRUST_POSE2D_CHECKPOINT ?=
TRUST_POSE2D_CONFIG ?=

.PHONY: venv browser test reproduce explore clean-venv

venv: $(STAMP)

# pip's notes about package indexes that lack a project are dropped from the log.
PIP := $(PY) -m pip install -q --disable-pip-version-check
# mmpose declares chumpy, left out on purpose (see requirements-post.txt): pip's complaint about it is dropped too.
QUIET := 2>&1 | sed -e '/is ignored: it is neither/d' -e '/BuildBackendWarning\|Editable installation\|^ *!!\|^ *\*\*\*/d' \
	-e '/dependency resolver does not currently take into account/d' -e '/mmpose .* requires chumpy/d'

$(STAMP): requirements.txt requirements-post.txt pyproject.toml
	@start=$$(date +%s); \
	set -euo pipefail; \
	if [ ! -x $(PY) ]; then $(PYTHON) -m venv $(VENV); fi; \
	echo "installing the pinned environment into $(VENV) (a few minutes on a fresh machine)"; \
	$(PIP) -r requirements.txt $(QUIET); \
	$(PIP) --no-deps $$(grep -E '^mmpose==' requirements-post.txt) $(QUIET); \
	$(PIP) --no-build-isolation --no-binary xtcocotools $$(grep -E '^xtcocotools==' requirements-post.txt) $(QUIET); \
	$(PIP) --no-deps --no-build-isolation -e . $(QUIET); \
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null; \
	touch $(STAMP); \
	echo "environment installed in $$(( $$(date +%s) - start )) s"

# The browser tests (the session report in headless Chromium) drive Debian's chromium through
# Playwright, never a downloaded browser: installed here when absent and apt-get can run (root).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests (about a minute)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "no /usr/bin/chromium and no apt-get as root to install it: the browser tests will be skipped"; fi; \
	fi

test: venv browser
	$(PY) -m pytest $(PYTEST_ARGS)

reproduce: venv
	$(PY) -m aims_lib.reproduce --profile $(PROFILE) --seed $(SEED) --device $(DEVICE) --gpus $(GPUS) $(if $(DRY_RUN),--dry-run) $(if $(SEEDS),--train-seeds $(SEEDS)) \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(SMIL),--smil-model $(SMIL)) \
		$(if $(POSE2D_CHECKPOINT),--pose2d-checkpoint $(POSE2D_CHECKPOINT)) $(if $(POSE2D_CONFIG),--pose2d-config $(POSE2D_CONFIG)) \
		$(if $(PRETRAINED),--pretrained $(PRETRAINED)) \
		$(if $(TRUST_SMIL),--trust-smil-model) $(if $(TRUST_POSE2D_CHECKPOINT),--trust-pose2d-checkpoint) $(if $(TRUST_POSE2D_CONFIG),--trust-pose2d-config)

clean-venv:
	rm -rf $(VENV)

# The explorer of a finished run (notebook 07) as an app: http://localhost:8866
explore: venv
	$(VENV)/bin/voila reports/$(PROFILE)/seed$(SEED)/07_explorer.ipynb --no-browser
