"""Architectures with named stages, safetensors checkpoints that never unpickle, and models from elsewhere
(Hugging Face, timm, torchvision, any ``nn.Module``) through :func:`load_model`."""

from transferlab.models._adapters import AdapterBlock, AdapterResNet, ResidualAdapter
from transferlab.models._base import PREPROCESSING, StagedModel, to_input
from transferlab.models._checkpoint import (
    Checkpoint,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from transferlab.models._convnet import ConvNet
from transferlab.models._device import check_device
from transferlab.models._hf_arch import FINETUNABLE_KINDS, HFClassifier, to_finetunable
from transferlab.models._hub import (
    ExternalModel,
    MissingExtraError,
    Preprocessing,
    load_model,
    parse_spec,
    wrap_module,
)
from transferlab.models._mlp import MLP
from transferlab.models._network_arch import HubClassifier, ModuleClassifier
from transferlab.models._multidomain import (
    MULTIDOMAIN_VARIANTS,
    MultiDomainResNet,
    load_multidomain,
    read_multidomain_metadata,
    save_multidomain,
)
from transferlab.models._registry import (
    available_archs,
    build,
    build_for,
    build_for_spec,
    count_parameters,
    get_arch,
    register_arch,
)
from transferlab.models._resnet import ResNet

__all__ = [
    "check_device",
    "load_model",
    "parse_spec",
    "wrap_module",
    "to_finetunable",
    "FINETUNABLE_KINDS",
    "HFClassifier",
    "HubClassifier",
    "ModuleClassifier",
    "ExternalModel",
    "Preprocessing",
    "MissingExtraError",
    "PREPROCESSING",
    "StagedModel",
    "to_input",
    "MLP",
    "ConvNet",
    "ResNet",
    "AdapterResNet",
    "AdapterBlock",
    "ResidualAdapter",
    "MultiDomainResNet",
    "MULTIDOMAIN_VARIANTS",
    "save_multidomain",
    "load_multidomain",
    "read_multidomain_metadata",
    "build",
    "build_for",
    "build_for_spec",
    "register_arch",
    "available_archs",
    "get_arch",
    "count_parameters",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "Checkpoint",
]
