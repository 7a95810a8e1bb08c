# The two commands of the README: `make demo` (the main job end to end) and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: install demo test lint bench

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "torch==$(TORCH_VERSION)"
	$(PIP) install -q -e ".[test]"
	@# ColorChecker detection: its metadata pulls opencv-python (GUI) and openimageio, which it does not
	@# need; the headless OpenCV comes with the test extra, the package itself without its dependencies.
	@$(PYTHON) -c "import colour_checker_detection" 2>/dev/null || $(PIP) install -q --no-deps "colour-checker-detection==0.2.3"

demo: install
	$(PYTHON) -m obscura.cli demo -o demo_out --overwrite

test: install
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint:
	ruff check . && ruff format --check .

bench: install
	$(PYTHON) benchmarks/demosaic.py
	$(PYTHON) benchmarks/develop.py
