"""build_for derives each architecture's input arguments from an image shape."""

from __future__ import annotations

import pytest
import torch

from transferlab.models._network_arch import provided_module
from transferlab.models._registry import build_for
from tests.helpers import TinyNetwork, registry_archs

# Architectures that need more than their input arguments: a Hugging Face one needs its model type and config,
# a timm one its name (and the first convolution's channels), a wrapped one its network and features' width.
OPTIONS = {"hf": {"model_type": "resnet", "hf_config": {"embedding_size": 4, "hidden_sizes": [4], "depths": [1]}},
           "hub": {"library": "timm", "name": "test_resnet", "feature_layer": None, "take": "input",
                   "feature_dim": 96},
           "module": {"feature_layer": None, "take": "input", "feature_dim": 4, "module_class": "TinyNetwork"}}


@pytest.mark.parametrize("arch", registry_archs())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 24)])
def test_output_shape_for_any_input_shape(arch, shape):
    options = dict(OPTIONS.get(arch, {}))
    if arch == "hub":
        options["options"] = {"in_chans": shape[0]}
    if arch == "module" and shape[0] != 1:
        pytest.skip("a wrapped network keeps its own input channels (TinyNetwork: 1)")
    with provided_module(TinyNetwork()):
        model = build_for(arch, shape, 5, seed=0, **options)
    assert model(torch.rand(2, *shape)).shape == (2, 5)


def test_bad_image_shape():
    with pytest.raises(ValueError, match="image_shape"):
        build_for("convnet", (28, 28), 5)
