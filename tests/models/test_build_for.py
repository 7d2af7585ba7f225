"""build_for derives each architecture's input arguments from an image shape."""

from __future__ import annotations

import pytest
import torch

from transferlab.models._registry import available_archs, build_for


# Architectures that need more than their input arguments: a Hugging Face one needs its model type and config.
OPTIONS = {"hf": {"model_type": "resnet", "hf_config": {"embedding_size": 4, "hidden_sizes": [4], "depths": [1]}}}


@pytest.mark.parametrize("arch", available_archs())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 24)])
def test_output_shape_for_any_input_shape(arch, shape):
    model = build_for(arch, shape, 5, seed=0, **OPTIONS.get(arch, {}))
    assert model(torch.rand(2, *shape)).shape == (2, 5)


def test_bad_image_shape():
    with pytest.raises(ValueError, match="image_shape"):
        build_for("convnet", (28, 28), 5)
