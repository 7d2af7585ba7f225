# `make demo`: set up and run the demo.  `make test`: set up and run the tests.
# Both create .venv when missing and install everything, from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test test-extras setup data bench clean

demo: setup data
	$(VENV)/bin/transferlab demo

test: setup data
	$(PY) -m pytest -q

setup: $(STAMP)

# The timm and torchvision adapters, in a venv of their own: torchvision needs torch 2.14.1 (on this
# disk as a CUDA build of several GB), which constraints.txt keeps out of the core venv.
EXTRAS_VENV := .venv-extras
test-extras:
	test -x $(EXTRAS_VENV)/bin/python || $(PYTHON) -m venv $(EXTRAS_VENV)
	$(EXTRAS_VENV)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 "timm>=1.0" \
	  "transformers>=4.44" "pytest>=8" "hypothesis>=6" numpy scipy scikit-learn POT captum typer rich \
	  matplotlib safetensors pillow threadpoolctl
	$(EXTRAS_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(EXTRAS_VENV)/bin/python -m pytest -q -rs tests/models/test_hub.py tests/rank/test_rank_models.py \
	  tests/models/test_finetunable_networks.py tests/models/test_architectures.py tests/models/test_build_for.py \
	  tests/models/test_checkpoint.py

# torch first, pinned by constraints.txt to the CPU wheel on disk (a plain `torch` would pull a CUDA
# build); the package asks only for torch>=2.2, and the constraints keep pip on the same wheel.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# Fashion-MNIST from Debian's dataset-fashion-mnist, when we may install it.
data:
	@if [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || \
	     echo "note: could not install dataset-fashion-mnist; the fashion source will be unavailable"; \
	  else \
	    echo "note: Fashion-MNIST not found in $(FASHION_DIR); run 'sudo apt-get install dataset-fashion-mnist'"; \
	  fi; \
	fi

bench: setup
	$(PY) bench/extract.py
	$(PY) bench/train.py
	$(PY) bench/scores.py
	$(PY) bench/cka.py
	$(PY) bench/selection_cost.py
	$(PY) bench/bound.py
	$(PY) bench/import_time.py
	$(PY) bench/bootstrap.py
	$(PY) bench/scale.py

clean:
	rm -rf $(VENV) $(EXTRAS_VENV) transferlab-out .pytest_cache
