"""Write a bring-your-own example: two Hugging Face models built from configs, one of our checkpoints,
and an image folder, all offline; then print the one command that ranks them.

    .venv/bin/python examples/byo_example.py byo
    .venv/bin/transferlab rank --models hf:byo/hf-resnet,hf:byo/hf-vit,file:byo/convnet-digits.safetensors \\
        --data byo/images

The Hugging Face models have random weights (built from configs: nothing is
downloaded); with real checkpoints, pass their hub ids or local folders instead.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def main(out: Path) -> str:
    import transformers

    from transferlab.data._sized import load_sized
    from transferlab.zoo import build_zoo

    out.mkdir(parents=True, exist_ok=True)
    task = load_sized("glyphs:greek-upper", train_per_class=12, test_per_class=1, seed=0)
    for c in range(6):  # an image folder: one subfolder per class
        folder = out / "images" / task.class_names[c]
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(task.x_train[task.y_train == c]):
            Image.fromarray(np.asarray(image)[0]).save(folder / f"{i:03d}.png")
    torch.manual_seed(0)
    transformers.ResNetForImageClassification(transformers.ResNetConfig(
        embedding_size=16, hidden_sizes=[16, 32, 64], depths=[1, 1, 1], num_labels=10)).save_pretrained(out / "hf-resnet")
    transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, num_labels=10)).save_pretrained(out / "hf-vit")
    zoo = build_zoo("builtin", "tiny", progress=False)  # seconds; cached under $TRANSFERLAB_HOME
    shutil.copy(zoo["convnet-digits"].checkpoint, out / "convnet-digits.safetensors")
    return (f"transferlab rank --models hf:{out}/hf-resnet,hf:{out}/hf-vit,file:{out}/convnet-digits.safetensors "
            f"--data {out}/images")


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "byo")))
