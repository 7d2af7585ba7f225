"""`transferlab select` on the bring-your-own example: rank, fine-tune the top k, keep the best.

The reported test accuracy is checked independently by loading the saved checkpoint
through `models.load_model("file:...")` and predicting the test images through its own
preprocessing; resuming and enlarging top-k are checked by counting the fine-tuning jobs
that actually run; freezing by comparing the saved backbone with the candidate's.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.data import load_data
from transferlab.models import load_model, to_finetunable
from transferlab.rank import _select, select

pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
runner = CliRunner()
FAST = ["--steps", "3", "--lrs", "0.03", "--bootstrap", "10", "-q"]


@pytest.fixture(scope="module")
def byo(tmp_path_factory, transferlab_home):
    path = Path(__file__).resolve().parents[2] / "examples" / "byo_example.py"
    spec = importlib.util.spec_from_file_location("byo_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("byo")
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: before the autouse home fixture
        mp.setenv("TRANSFERLAB_HOME", str(transferlab_home))
        module.main(out)
    return out


def _models(byo: Path, *names: str) -> list[str]:
    specs = {"resnet": f"hf:{byo}/hf-resnet", "vit": f"hf:{byo}/hf-vit", "convnet": f"file:{byo}/convnet-digits.safetensors"}
    return [specs[n] for n in names]


def _accuracy_of_checkpoint(path: Path, data: Path) -> float:
    model = load_model(f"file:{path}")
    images = load_data(data, seed=0)
    logits = model.logits(model.preprocessing(list(images.x_test)))
    return float(np.mean(logits.argmax(1).numpy() == images.y_test))


def test_cli_select_top2_writes_a_checkpoint_that_reproduces_its_test_accuracy(byo, tmp_path):
    out = tmp_path / "out"
    models = ",".join(_models(byo, "resnet", "vit", "convnet"))
    result = runner.invoke(app, ["select", "--models", models, "--data", str(byo / "images"), "--top-k", "2",
                                 "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Chosen: ")
    for name in ("select.csv", "select.json", "select.md", "select.png", "selected.safetensors"):
        assert (out / name).is_file(), name
    d = json.loads((out / "select.json").read_text())
    tuned = [r for r in d["rows"] if r["fine_tuned"]]
    assert len(tuned) == 2 and [r["position"] for r in tuned] == [1, 2]
    chosen = next(r for r in tuned if r["model"] == d["chosen"])
    assert chosen["val_accuracy"] == max(r["val_accuracy"] for r in tuned)
    # Reload the saved model and predict the test split: the reported accuracy, exactly.
    assert _accuracy_of_checkpoint(out / "selected.safetensors", byo / "images") == pytest.approx(
        chosen["test_accuracy"], abs=1e-12)
    reloaded = load_model(f"file:{out / 'selected.safetensors'}")
    assert reloaded.class_names == tuple(load_data(byo / "images").class_names)
    assert d["brute_force_seconds"] == pytest.approx(np.mean([r["seconds"] for r in tuned]) * 3)
    # and `rank` takes it back as a candidate
    again = runner.invoke(app, ["rank", "--models", f"file:{out / 'selected.safetensors'}", "--data",
                                str(byo / "images"), "--scores", "logme", "--bootstrap", "0", "--out",
                                str(tmp_path / "r"), "-q"])
    assert again.exit_code == 0, again.output


def test_resume_and_a_larger_top_k_run_only_new_candidates(byo, tmp_path, monkeypatch):
    calls = []
    real = _select.finetune_job

    def counting(**kwargs):
        calls.append(kwargs["spec"])
        if kwargs["spec"].endswith("hf-vit") and not calls.count("crashed"):
            calls.append("crashed")  # the first attempt at the second candidate dies (a kill)
            raise KeyboardInterrupt
        return real(**kwargs)

    monkeypatch.setattr(_select, "finetune_job", counting)
    models = _models(byo, "convnet", "vit", "resnet")
    common = dict(score="parameters", lrs=[0.03], steps=2, bootstrap=0, progress=False, seed=1)
    # ordered by parameters: vit (24k), resnet (11k), convnet (1.4k)
    with pytest.raises(KeyboardInterrupt):
        select(models, byo / "images", top_k=2, **common)
    first = select(models, byo / "images", top_k=1, **common)
    assert [r["model"] for r in first.rows if r["fine_tuned"]] == [models[1]]
    assert calls == [models[1], "crashed", models[1]]
    second = select(models, byo / "images", top_k=2, **common)  # only resnet is new
    assert calls == [models[1], "crashed", models[1], models[2]]
    assert [r["model"] for r in second.rows if r["fine_tuned"]] == [models[1], models[2]]
    everything = select(models, byo / "images", top_k="all", **common)
    assert calls[-1] == models[0] and len(calls) == 5
    assert set(everything.regret) >= {"consensus", "parameters", "logme"}
    best = max(r["test_accuracy"] for r in everything.rows)
    for name, regret in everything.regret.items():
        assert 0.0 <= regret["top3"] <= regret["top1"] <= 100.0 * best, name
    top1 = everything.rows[0]["test_accuracy"]  # the parameters order's first
    assert everything.regret["parameters"]["top1"] == pytest.approx(100 * (best - top1))


def test_frozen_backbone_keeps_the_backbone_weights(byo, tmp_path):
    models = _models(byo, "convnet")
    result = select(models, byo / "images", top_k=1, freeze="backbone", lrs=[0.1], steps=3, bootstrap=0,
                    progress=False, out_dir=tmp_path)
    saved = load_model(f"file:{result.checkpoint}").module.state_dict()
    original = to_finetunable(load_model(models[0]), 6, seed=0).state_dict()
    backbone = [k for k in original if not k.startswith("head.")]
    assert backbone and all(torch.equal(saved[k], original[k]) for k in backbone)
    assert not torch.equal(saved["head.weight"], original["head.weight"])  # the head did train


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--score", "nosuch"], "nosuch"),
        (["--top-k", "9"], "top_k is 9 but there are only 2 candidates"),
        (["--top-k", "two"], "--top-k must be an integer or 'all'"),
        (["--lrs", "fast"], "--lrs must be comma-separated numbers"),
        (["--steps", "3", "--epochs", "2"], "steps or epochs, not both"),
        (["--freeze", "half"], "freeze must be one of"),
        (["--score", "logme", "--freeze", "7"], "freeze is 7 stages but"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(byo, extra, message):
    models = ",".join(_models(byo, "convnet", "vit"))
    top_k = [] if "--top-k" in extra else ["--top-k", "1"]
    result = runner.invoke(app, ["select", "--models", models, "--data", str(byo / "images"), "-q", *top_k, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2  # one message (Rich may wrap it once)


def test_a_data_folder_with_one_class_is_refused(byo, tmp_path):
    one = tmp_path / "one" / "only"
    one.mkdir(parents=True)
    for i, src in enumerate(sorted((byo / "images").iterdir())[0].iterdir()):
        (one / f"{i}.png").write_bytes(src.read_bytes())
    result = runner.invoke(app, ["select", "--models", _models(byo, "convnet")[0], "--data", str(tmp_path / "one"),
                                 "--top-k", "1", "-q"])
    assert result.exit_code == 2 and "at least 2" in result.output and "Traceback" not in result.output


def test_freezing_the_first_stage_keeps_it_and_trains_the_rest(byo, tmp_path):
    models = _models(byo, "convnet")
    result = select(models, byo / "images", top_k=1, freeze=1, lrs=[0.1], steps=3, bootstrap=0, progress=False,
                    out_dir=tmp_path)
    saved = load_model(f"file:{result.checkpoint}").module.state_dict()
    original = to_finetunable(load_model(models[0]), 6, seed=0)
    first = original.stage_names[0]
    state = original.state_dict()
    frozen = [k for k in state if k.startswith(f"stages.{first}.")]
    trained = [k for k in state if k.startswith("stages.") and k not in frozen and k.endswith("weight")]
    assert frozen and trained
    assert all(torch.equal(saved[k], state[k]) for k in frozen)
    assert any(not torch.equal(saved[k], state[k]) for k in trained)
