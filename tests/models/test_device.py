"""check_device: a typo or a missing GPU fails at once, in the library and before any work."""

from __future__ import annotations

import pytest
import torch

from transferlab.models import check_device


def test_cpu_passes_and_comes_back_as_torch_spells_it():
    assert check_device("cpu") == "cpu"
    assert check_device(torch.device("cpu")) == "cpu"


@pytest.mark.parametrize("device", ["nosuch", "gpu0", "cuda:x", ""])
def test_a_name_torch_does_not_know_is_refused(device):
    with pytest.raises(ValueError, match=rf"^device '{device}' is not a torch device; use one of cpu, cuda, mps"):
        check_device(device)


def test_a_device_type_transferlab_does_not_run_on_is_refused():
    with pytest.raises(ValueError, match=r"^device 'meta' is not supported; use one of cpu, cuda, mps or cuda:N$"):
        check_device("meta")


@pytest.mark.parametrize("device", [3, None, True, ["cpu"]])
def test_a_non_string_is_refused(device):
    with pytest.raises(ValueError, match=r"^device must be a string such as 'cpu' or 'cuda'; got"):
        check_device(device)


def test_cuda_without_cuda_names_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as info:
        check_device("cuda")
    assert str(info.value) == "device 'cuda' was asked for but CUDA is not available here; use device='cpu'"
    with pytest.raises(ValueError) as info:
        check_device("cuda:1", fix="--device cpu")
    assert str(info.value) == "device 'cuda:1' was asked for but CUDA is not available here; use --device cpu"


def test_a_cuda_index_past_the_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError) as info:
        check_device("cuda:2")
    assert str(info.value) == "device 'cuda:2' was asked for but this machine has 2 CUDA device(s) (cuda:0 to cuda:1)"


def test_work_sent_elsewhere_checks_the_name_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_device("cuda", here=False) == "cuda"
    with pytest.raises(ValueError, match="is not a torch device"):
        check_device("nosuch", here=False)


def test_mps_without_mps_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device 'mps' was asked for but MPS is not available here; use"):
        check_device("mps")


def test_the_entry_points_check_the_device_before_any_work(tmp_path, monkeypatch):
    from transferlab.rank import rank_models, rank_zoo
    from transferlab.studies import run_selection
    from transferlab.zoo import build_zoo

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = "device 'cuda' was asked for but CUDA is not available here"
    with pytest.raises(ValueError, match=message):
        build_zoo("builtin", "tiny", root=tmp_path / "zoo", device="cuda", progress=False)
    with pytest.raises(ValueError, match=message):
        rank_zoo(None, None, device="cuda", progress=False)  # nothing is read before the check
    with pytest.raises(ValueError, match=message):
        rank_models(["file:/no/such.safetensors"], tmp_path / "no-such-data", device="cuda", progress=False)
    with pytest.raises(ValueError, match=message):
        run_selection("tiny", out_dir=tmp_path / "out", device="cuda", progress=False)
    assert list(tmp_path.iterdir()) == [], "nothing was written"
