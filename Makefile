# The few verbs a newcomer needs. Every target installs what it needs first (idempotent).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := chromium fonts-noto-cjk fonts-noto-core libegl1 libgl1 libglib2.0-0 nginx-light wrk xvfb \
	libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 \
	postgresql-15-postgis-3 redis-server systemd prometheus \
	mosquitto mosquitto-clients ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
PORT ?= 8000

.PHONY: install apt venv web demo test test-fast lint typecheck bench clean

install: apt venv web

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,detect,viewer]'
	@touch $@

web: web/node_modules/.package-lock.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

demo: install
	$(BIN)/twin demo --port $(PORT)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

# The inner loop: no browser, no server process or engine, nothing slow (markers: pyproject.toml).
test-fast: venv
	$(BIN)/pytest -q -m "not browser and not slow"

PY3DTILES := .cache/py3dtiles-venv/bin/py3dtiles

# The py3dtiles CLI (the point-cloud peer of bench/pointcloud.py) pins numpy < 2.4: own venv.
$(PY3DTILES):
	$(PYTHON) -m venv .cache/py3dtiles-venv
	.cache/py3dtiles-venv/bin/pip install -q py3dtiles 'laspy[lazrs]'

bench: install $(PY3DTILES)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) web/node_modules .mypy_cache .ruff_cache .pytest_cache
