#!/usr/bin/env bash
# The GPU checks of issue 20, for a machine with a CUDA device (one short run):
# the CUDA-marked tests (extraction, per-sample gradients, fine-tuning, a tiny study with
# --device cuda) and the 224-px extraction bench on the GPU.
#   bash bench/gpu_check.sh        (from the repository root, after `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
"$PY" -m pytest -q -p no:cacheprovider -m cuda -rs tests/test_cuda.py
"$PY" bench/scale_extraction.py --device cuda
