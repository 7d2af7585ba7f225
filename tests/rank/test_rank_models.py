"""Ranking your own models for your own data, in Python and from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.models import ConvNet
from transferlab.models._checkpoint import save_checkpoint
from transferlab.scores import leep, logme
from transferlab.rank import _models, rank_models

transformers = pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo")
    rng = np.random.default_rng(0)
    for k, c in enumerate(("circle", "square", "stripe")):
        (root / "images" / c).mkdir(parents=True)
        for i in range(8):
            img = rng.integers(0, 80, size=(30 + i, 30, 3), dtype=np.uint8)
            img[..., k] += 150  # one colour per class: learnable by any feature
            Image.fromarray(img).save(root / "images" / c / f"{i}.png")
    (root / "images" / "square" / "corrupt.png").write_bytes(b"\x89PNG broken")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        transformers.ResNetForImageClassification(transformers.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=5)).save_pretrained(root / "resnet")
        transformers.ViTForImageClassification(transformers.ViTConfig(
            image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32, num_labels=4)).save_pretrained(root / "vit")
        checkpoint = save_checkpoint(root / "ours.safetensors", ConvNet(widths=(4, 8), num_classes=10))
    models = [f"hf:{root / 'resnet'}", f"hf:{root / 'vit'}", f"file:{checkpoint}"]
    return root, models


def test_rank_in_python_matches_the_scores_on_the_features(setup, tmp_path):
    root, models = setup
    from transferlab.data._external import load_data
    from transferlab.models._hub import load_model

    with pytest.warns(UserWarning, match="corrupt.png"):
        data = load_data(root / "images", strict=False)
    ranking = rank_models(models, data, ["logme", "leep"], progress=False)
    assert [r["model"] for r in ranking.rows] == sorted(models, key=lambda m: -next(
        r["logme"] for r in ranking.rows if r["model"] == m))
    vit = load_model(models[1])
    z, logits = vit.features_and_logits(vit.preprocessing(data.x_train))
    row = next(r for r in ranking.rows if r["model"] == models[1])
    assert row["logme"] == pytest.approx(logme(z.double().numpy(), data.y_train), rel=1e-6)
    probs = torch.softmax(logits.double(), 1).numpy()
    assert row["leep"] == pytest.approx(leep(probs, data.y_train), rel=1e-6)
    assert row["input_size"] == "32x32"


def test_pool_level_scores_over_outside_models(setup):
    # The one ranker gives outside models the pool-level scores too: one features matrix per model.
    root, models = setup
    from transferlab.data._external import load_data
    from transferlab.models._hub import load_model
    from transferlab.scores import ncti

    with pytest.warns(UserWarning, match="corrupt.png"):
        data = load_data(root / "images", strict=False)
    ranking = rank_models(models, data, ["logme", "ncti"], progress=False)
    assert ranking.scores == ("logme",) and ranking.pool_scores == ("ncti",)
    pool = []
    for spec in models:
        model = load_model(spec)
        pool.append(model.features_and_logits(model.preprocessing(data.x_train))[0].double().numpy())
    expected = dict(zip(models, ncti(pool, data.y_train)))
    for row in ranking.rows:
        assert row["ncti"] == pytest.approx(expected[row["model"]], rel=1e-6, abs=1e-9)


def test_shots_and_a_model_without_head(setup):
    root, models = setup
    from torch import nn

    from transferlab.models._hub import wrap_module

    body = wrap_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), input_size=16,
                       feature_layer="2", has_head=False)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        ranking = rank_models([models[0], body], root / "images", ["logme", "leep"], shots=3, strict=False,
                              progress=False)
    no_head = next(r for r in ranking.rows if not r["has_head"])
    assert no_head["leep"] is None and np.isfinite(no_head["logme"])


def test_cli_end_to_end_and_the_cache(setup, tmp_path, monkeypatch):
    root, models = setup
    out = tmp_path / "out"
    args = ["rank", "--models", ",".join(models), "--data", str(root / "images"), "--skip-bad", "--out", str(out)]
    first = runner.invoke(app, [*args, "--scores", "logme,leep,nce", "-q"])
    assert first.exit_code == 0, first.output
    assert "models ranked for images" in first.output
    assert "skipped 1 unreadable image(s)" in first.output and "corrupt.png" in first.output
    payload = json.loads((out / "ranking.json").read_text())
    assert len(payload["rows"]) == 3 and payload["scores"] == ["logme", "leep", "nce"]
    assert (out / "ranking.csv").read_text().count("\n") == 4

    def no_extraction(*a, **k):
        raise AssertionError("features were extracted again")

    monkeypatch.setattr(_models, "_extract", no_extraction)
    second = runner.invoke(app, [*args, "--scores", "hscore", "-q"])  # another score: only scoring
    assert second.exit_code == 0, second.output


def test_cli_errors_exit_2(setup, tmp_path):
    root, models = setup
    strict = runner.invoke(app, ["rank", "--models", models[0], "--data", str(root / "images"), "-q"])
    assert strict.exit_code == 2 and "corrupt.png" in strict.output and "--skip-bad" in strict.output
    alone = runner.invoke(app, ["rank", "--models", models[0], "-q"])
    assert alone.exit_code == 2 and "go together" in alone.output
    bad = runner.invoke(app, ["rank", "--models", "onnx:x", "--data", str(root / "images"), "-q"])
    assert bad.exit_code == 2 and "unknown model kind" in bad.output
    neither = runner.invoke(app, ["rank", "-q"])
    assert neither.exit_code == 2 and "--target" in neither.output


def test_precomputed_features_are_scored_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    np.savez(tmp_path / "f.npz", features=rng.normal(size=(40, 3)) + y[:, None], labels=y)
    ranking = rank_models([], tmp_path / "f.npz", ["logme"], progress=False)
    from transferlab.data._external import load_npz

    data = load_npz(tmp_path / "f.npz")
    assert ranking.rows[0]["logme"] == pytest.approx(logme(data.x_train, data.y_train))
    with pytest.raises(ValueError, match="give no models"):
        rank_models(["hf:x"], tmp_path / "f.npz", ["logme"], progress=False)


def test_streamed_extraction_equals_one_pass_in_memory(setup, tmp_path):
    # Decoded in threads, batch by batch, written to the cache in chunks and read back memory-mapped: the
    # arrays are those of the model run on all the images decoded by Pillow here, in one batch (float32
    # convolutions over other batch sizes agree to rounding, hence the tolerances).
    root, models = setup
    from transferlab.data._external import ImageFiles, load_data
    from transferlab.features import FeatureCache
    from transferlab.models._hub import load_model
    from transferlab.rank import ModelCandidate

    with pytest.warns(UserWarning, match="corrupt.png"):
        data = load_data(root / "images", strict=False)
    assert isinstance(data.x_train, ImageFiles)
    model = load_model(models[0])
    z, logits = model.features_and_logits(model.preprocessing([np.asarray(Image.open(p).convert("RGB"))
                                                               for p in data.x_train.paths]))
    cache = FeatureCache(tmp_path / "cache")
    candidate = ModelCandidate(model, data, cache=cache, batch_size=5, progress=False)  # 19 images: 4 x 5 - 1
    feats, probs = candidate.array("features"), candidate.array("source_probs")
    np.testing.assert_allclose(feats, z.double().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(probs, torch.softmax(logits.double(), 1).numpy(), rtol=1e-6, atol=1e-9)
    assert not feats.flags.writeable and not probs.flags.writeable  # memory-mapped from the cache
    np.testing.assert_array_equal(cache.get(_candidate_key(cache, model, data, "features")), feats)
    again = ModelCandidate(model, data, cache=cache, batch_size=7, progress=False)  # read from the cache
    np.testing.assert_array_equal(again.array("features"), feats)


def _candidate_key(cache, model, data, kind):
    return cache.key(model.module, kind=kind, task=data, split="train", stage=model.feature_layer,
                     options={"preprocessing": model.preprocessing.to_dict()})


def test_batches_in_threads_are_the_batches_of_one_thread():
    from transferlab.models._hub import Preprocessing

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(9 + i % 4, 11, 3), dtype=np.uint8) for i in range(23)]
    pre = Preprocessing((8, 8))
    serial = list(_models._batches(pre, images, 6, workers=0))  # no threads
    for workers in (1, 3):
        threaded = list(_models._batches(pre, images, 6, workers=workers))
        assert [b.shape[0] for b in threaded] == [6, 6, 6, 5]
        for a, b in zip(serial, threaded):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # Independently: Pillow's bilinear resize, scaled to [0, 1], normalised with ImageNet's statistics.
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    expected = np.stack([((np.asarray(Image.fromarray(im).resize((8, 8), Image.BILINEAR), np.float32) / 255 - mean)
                          / std).transpose(2, 0, 1) for im in images])
    np.testing.assert_allclose(torch.cat(threaded).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_nan_features_are_refused_and_nothing_is_cached(setup, tmp_path):
    root, _ = setup
    from torch import nn

    from transferlab.data._external import load_data
    from transferlab.features import FeatureCache
    from transferlab.models._hub import wrap_module
    from transferlab.rank import ModelCandidate

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean(dim=(2, 3)) * float("nan"))

    with pytest.warns(UserWarning, match="corrupt.png"):
        data = load_data(root / "images", strict=False)
    cache = FeatureCache(tmp_path / "cache")
    candidate = ModelCandidate(wrap_module(Broken(), name="broken", input_size=8), data, cache=cache, batch_size=4,
                               progress=False)
    with pytest.raises(ValueError, match="features of 'broken' contain NaN or Inf"):
        candidate.array("features")
    assert not list((tmp_path / "cache").rglob("*.npy")) and not list((tmp_path / "cache").rglob("*.tmp"))


def test_an_image_corrupted_after_loading_stops_extraction_by_name(setup, tmp_path):
    root, models = setup
    import shutil

    from transferlab.data._external import load_data
    from transferlab.features import FeatureCache
    from transferlab.models._hub import load_model
    from transferlab.rank import ModelCandidate

    shutil.copytree(root / "images", tmp_path / "images")
    (tmp_path / "images" / "square" / "corrupt.png").unlink()
    data = load_data(tmp_path / "images")
    victim = data.x_train.paths[-1]
    victim.write_bytes(b"\x89PNG broken now")
    candidate = ModelCandidate(load_model(models[0]), data, cache=FeatureCache(tmp_path / "cache"), batch_size=4,
                               progress=False)
    with pytest.raises(ValueError, match=rf"cannot read image '.*{victim.parent.name}/{victim.name}'"):
        candidate.array("features")
    assert not list((tmp_path / "cache").rglob("*.npy"))
