"""The CUDA paths (``pytest -m cuda``): the same results on the GPU as on the CPU.

Skipped on a machine without CUDA (this project's CI has none); run on a GPU
machine with ``bench/gpu_check.sh``, which runs these tests and the extraction
bench at 224 px with ``--device cuda``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers import TinyConvNet, tiny_task
from transferlab.cli import app
from transferlab.features import extract, per_sample_gradients
from transferlab.train import TrainConfig, fit

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_extraction_on_the_gpu_equals_the_cpu():
    task = tiny_task(n_per_class=8)
    model = TinyConvNet(seed=0)
    cpu = extract(model, task.x_train, device="cpu")
    gpu = extract(model, task.x_train, device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_per_sample_gradients_on_the_gpu_equal_the_cpu():
    task = tiny_task(n_per_class=4)
    model = TinyConvNet(seed=0)
    cpu = per_sample_gradients(model, task.x_train, dim=64, seed=0, device="cpu")
    gpu = per_sample_gradients(model, task.x_train, dim=64, seed=0, device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-5)


def test_fine_tuning_on_the_gpu_learns_the_tiny_task():
    task = tiny_task(n_per_class=20)
    model = TinyConvNet(seed=0)
    fit(model, (task.x_train, task.y_train), TrainConfig(epochs=8, lr=0.05, batch_size=16, device="cuda"),
        progress=False)
    assert next(model.parameters()).device.type == "cuda"
    with torch.no_grad():
        x = torch.as_tensor(task.x_test, dtype=torch.float32, device="cuda") / 255.0
        accuracy = (model(x).argmax(1).cpu().numpy() == task.y_test).mean()
    assert accuracy > 1 / 3  # above chance on three separable classes


def test_a_tiny_study_runs_with_device_cuda(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["study", "bound", "--preset", "tiny", "--device", "cuda", "--out",
                                      str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.md").is_file()
