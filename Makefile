# The two commands of README.md:
#   make demo   set up, then run filtag on the embedded default (Fashion-MNIST CNN)
#   make test   set up, then run the test suite (what CI runs)
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test setup setup-dev lint

setup:
	$(PIP) -r requirements.txt
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

setup-dev: setup
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps foolbox==3.3.4

demo: setup
	$(PYTHON) rundefault.py

lint: setup-dev
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m ruff check .

test: lint
	$(PYTHON) -m pytest
