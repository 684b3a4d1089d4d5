# The two commands of README.md:
#   make demo   set up, then run filtag on the embedded default (Fashion-MNIST CNN)
#   make test   set up, then run the test suite (what CI runs)
# Everything is installed into a project virtual environment, .venv/, so a stock
# Debian/Ubuntu Python (PEP 668, "externally managed") works too.
PYTHON ?= python3
VENV = .venv
PY = $(VENV)/bin/python
PIP = $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test setup setup-dev lint system

$(PY):
	@# Debian/Ubuntu ship venv separately (python3-venv); install it if missing.
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -qq python3-venv >/dev/null 2>&1 \
	    || (apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null); \
	  fi; $(PYTHON) -m venv $(VENV); }
	$(PIP) --upgrade pip

system:
	@# Fashion-MNIST offline from Debian; without it filtag downloads it through Keras.
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null \
	  && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
	   || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) \
	  || echo "dataset-fashion-mnist not installed; keras.datasets will download it"; \
	fi
	@# Headless Chromium: kaleido renders the PNG plots with it, and the browser test
	@# opens the pages in it. Without it those tests are skipped.
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null \
	  && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 \
	   || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) \
	  || echo "chromium not installed; PNG export and the browser test are skipped"; \
	fi

setup: $(PY) system
	$(PIP) -e .

setup-dev: setup
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps foolbox==3.3.4

demo: setup
	$(VENV)/bin/filtag demo

lint: setup-dev
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest
