"""Multi-domain ResNets: one shared trunk, per-domain parameters in three variants.

After Rebuffi, Bilen, Vedaldi (2017), "Learning multiple visual domains with
residual adapters", NeurIPS, and Rebuffi, Bilen, Vedaldi (2018), "Efficient
parametrization of multi-domain deep neural networks", CVPR. Every variant has
one linear head per domain; they differ in what else belongs to a domain:

- ``"shared"``: nothing: every convolution and batch norm is shared;
- ``"multibn"``: every batch-norm layer (scale, shift and running statistics);
- ``"adapters"``: every batch-norm layer and a residual adapter (1x1 convolution
  and batch norm) in parallel to each 3x3 convolution of every basic block.

:meth:`MultiDomainResNet.export_domain` cuts one domain out as a standalone
model of a registered architecture (``resnet`` or ``adapter_resnet``), so that
fitting, fine-tuning, feature extraction and checkpoints work on it unchanged.
:func:`save_multidomain` and :func:`load_multidomain` keep the joint model in a
safetensors file, written and loaded by the one writer and loader of
:mod:`~transferlab.models._checkpoint` (same checks, same errors).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferlab._validation import check_int, check_int_sequence, check_seed
from transferlab.models._adapters import AdapterResNet, ResidualAdapter
from transferlab.models._base import StagedModel
from transferlab.models._checkpoint import _Format, _load, _read, _save, _verify
from transferlab.models._convnet import _init_conv_bn
from transferlab.models._resnet import ResNet, _conv3x3

__all__ = ["MULTIDOMAIN_VARIANTS", "MultiDomainResNet", "save_multidomain", "load_multidomain", "read_multidomain_metadata"]

#: The three multi-domain variants, in order of how much each domain owns.
MULTIDOMAIN_VARIANTS = ("shared", "multibn", "adapters")
#: Key of our JSON document in the safetensors header of a joint multi-domain model.
MULTIDOMAIN_KEY = "transferlab-multidomain"
_FORMAT_VERSION = 1


class _DomainBatchNorm(nn.Module):
    """One :class:`~torch.nn.BatchNorm2d` shared by every domain, or one per domain."""

    def __init__(self, channels: int, n_domains: int, per_domain: bool):
        super().__init__()
        self.per_domain = per_domain
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(n_domains if per_domain else 1))

    def pick(self, d: int) -> nn.BatchNorm2d:
        return self.bns[d] if self.per_domain else self.bns[0]


class _MultiDomainBlock(nn.Module):
    """A basic block with shared 3x3 convolutions and per-domain batch norms and adapters.

    Computes exactly what :class:`~transferlab.models._resnet.BasicBlock` (or,
    with adapters, :class:`~transferlab.models._adapters.AdapterBlock`) computes
    with domain ``d``'s parameters, in the same order of operations.
    """

    def __init__(self, cin: int, cout: int, stride: int, n_domains: int, per_domain_bn: bool, adapters: bool):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = _DomainBatchNorm(cout, n_domains, per_domain_bn)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = _DomainBatchNorm(cout, n_domains, per_domain_bn)
        self.relu = nn.ReLU()
        self.projection = stride != 1 or cin != cout
        if self.projection:
            self.shortcut_conv = nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)
            self.shortcut_bn = _DomainBatchNorm(cout, n_domains, per_domain_bn)
        self.adapters1 = nn.ModuleList(ResidualAdapter(cin, cout, stride) for _ in range(n_domains)) if adapters else None
        self.adapters2 = nn.ModuleList(ResidualAdapter(cout, cout) for _ in range(n_domains)) if adapters else None

    def forward(self, x: torch.Tensor, d: int) -> torch.Tensor:
        out = self.conv1(x)
        if self.adapters1 is not None:
            out = out + self.adapters1[d](x)
        out = self.relu(self.bn1.pick(d)(out))
        h = self.conv2(out)
        if self.adapters2 is not None:
            h = h + self.adapters2[d](out)
        h = self.bn2.pick(d)(h)
        shortcut = self.shortcut_bn.pick(d)(self.shortcut_conv(x)) if self.projection else x
        return self.relu(h + shortcut)

    def export_state(self, d: int, prefix: str) -> dict[str, torch.Tensor]:
        """Domain ``d``'s tensors under the names of a ``BasicBlock``/``AdapterBlock`` at ``prefix``."""
        state = {f"{prefix}conv1.weight": self.conv1.weight, f"{prefix}conv2.weight": self.conv2.weight}
        state.update(_prefixed(self.bn1.pick(d), f"{prefix}bn1."))
        state.update(_prefixed(self.bn2.pick(d), f"{prefix}bn2."))
        if self.projection:
            state[f"{prefix}shortcut.conv.weight"] = self.shortcut_conv.weight
            state.update(_prefixed(self.shortcut_bn.pick(d), f"{prefix}shortcut.bn."))
        if self.adapters1 is not None:
            state.update(_prefixed(self.adapters1[d], f"{prefix}adapter1."))
            state.update(_prefixed(self.adapters2[d], f"{prefix}adapter2."))
        return state


def _prefixed(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + name: tensor for name, tensor in module.state_dict(keep_vars=True).items()}


def _check_domains(domains: Any, num_classes: Any) -> tuple[tuple[str, ...], list[int]]:
    if isinstance(domains, (str, bytes)) or not isinstance(domains, Sequence) or not domains:
        raise ValueError(f"domains must be a non-empty list of domain names; got {domains!r}")
    names = tuple(domains)
    bad = [d for d in names if not isinstance(d, str) or not d]
    if bad:
        raise ValueError(f"domains must be non-empty strings; got {bad!r} in {list(names)!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"domains must be unique; got {list(names)!r}")
    classes = check_int_sequence(num_classes, "num_classes")
    if len(classes) != len(names):
        raise ValueError(
            f"num_classes must give one class count per domain ({len(names)} domains {list(names)!r}); "
            f"got {len(classes)}: {classes}"
        )
    return names, classes


class MultiDomainResNet(nn.Module):
    """One CIFAR-style ResNet trunk for several domains, with per-domain heads (and more).

    The trunk is the :class:`~transferlab.models._resnet.ResNet` of the same
    ``in_channels``, ``width`` and ``blocks``. For domain ``d``,
    ``forward(x, d)`` is that ResNet with domain ``d``'s head and, by variant:

    - ``"shared"``: shared batch norms (statistics pooled over all domains);
    - ``"multibn"``: domain ``d``'s batch norms (Bilen & Vedaldi 2017, "Universal
      representations: the missing link between faces, text, planktons, and cat
      breeds"; the Multi-BN baseline of Rebuffi et al. 2017);
    - ``"adapters"``: domain ``d``'s batch norms and residual adapters, one
      :class:`~transferlab.models._adapters.ResidualAdapter` in parallel to each
      3x3 convolution of every basic block (Rebuffi, Bilen, Vedaldi 2017,
      "Learning multiple visual domains with residual adapters", NeurIPS; the
      parallel form of Rebuffi et al. 2018, CVPR).

    Parameters
    ----------
    domains : list of str
        Domain names (e.g. source task specs), unique; their order is the order
        of the per-domain parameters.
    num_classes : list of int
        Classes of each domain's head.
    variant : {"shared", "multibn", "adapters"}
    in_channels : int, default 1
    width : int, default 16
    blocks : sequence of int, default (1, 1, 1)
    seed : int, optional
        Seed of the initialisation (the global torch RNG is left as it was);
        without it the global RNG is used.

    Examples
    --------
    >>> model = MultiDomainResNet(["a", "b"], [3, 5], "multibn", width=4, blocks=(1, 1), seed=0)
    >>> tuple(model(torch.zeros(2, 1, 8, 8), "b").shape)
    (2, 5)
    >>> type(model.export_domain("a")).__name__
    'ResNet'
    """

    def __init__(
        self,
        domains: Sequence[str],
        num_classes: Sequence[int],
        variant: str = "multibn",
        in_channels: int = 1,
        width: int = 16,
        blocks: Sequence[int] = (1, 1, 1),
        *,
        seed: int | None = None,
    ):
        super().__init__()
        names, classes = _check_domains(domains, num_classes)
        if variant not in MULTIDOMAIN_VARIANTS:
            close = difflib.get_close_matches(str(variant), MULTIDOMAIN_VARIANTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"variant must be one of {list(MULTIDOMAIN_VARIANTS)}; got {variant!r}{hint}")
        in_channels = check_int(in_channels, "in_channels")
        width = check_int(width, "width")
        blocks = check_int_sequence(blocks, "blocks")
        self.domains = names
        self.variant = variant
        self.config = {
            "domains": list(names),
            "num_classes": classes,
            "variant": variant,
            "in_channels": in_channels,
            "width": width,
            "blocks": blocks,
        }
        if seed is None:
            self._build(len(names), classes, in_channels, width, blocks)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(check_seed(seed))
                self._build(len(names), classes, in_channels, width, blocks)

    def _build(self, n: int, classes: list[int], in_channels: int, width: int, blocks: list[int]) -> None:
        per_domain_bn = self.variant != "shared"
        adapters = self.variant == "adapters"
        self.stem_conv = _conv3x3(in_channels, width)
        self.stem_bn = _DomainBatchNorm(width, n, per_domain_bn)
        self.relu = nn.ReLU()
        self.layers = nn.ModuleList()
        channels = width
        for i, n_blocks in enumerate(blocks):
            out = width * 2**i
            layer = nn.ModuleList()
            for j in range(n_blocks):
                layer.append(_MultiDomainBlock(channels, out, 2 if (i > 0 and j == 0) else 1, n, per_domain_bn, adapters))
                channels = out
            self.layers.append(layer)
        self.feature_dim = channels
        self.heads = nn.ModuleList(nn.Linear(channels, k) for k in classes)
        _init_conv_bn(self)
        for module in self.modules():  # adapters start as the zero function (see ResidualAdapter)
            if isinstance(module, ResidualAdapter):
                nn.init.zeros_(module.bn.weight)

    # -- forward -------------------------------------------------------------------
    def domain_index(self, domain: str) -> int:
        """Position of ``domain`` in :attr:`domains`; ``ValueError`` with the closest name otherwise."""
        if domain in self.domains:
            return self.domains.index(domain)
        close = difflib.get_close_matches(str(domain), self.domains, n=1, cutoff=0.0)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown domain {domain!r}; the model's domains are {list(self.domains)}{hint}")

    def forward_features(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Globally average-pooled features of the last stage for ``domain``, shape ``(N, feature_dim)``."""
        d = self.domain_index(domain)
        x = self.relu(self.stem_bn.pick(d)(self.stem_conv(x)))
        for layer in self.layers:
            for block in layer:
                x = block(x, d)
        return StagedModel.pool(x)

    def forward(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """Logits of ``domain``'s head, shape ``(N, num_classes[domain])``."""
        return self.heads[self.domain_index(domain)](self.forward_features(x, domain))

    # -- export ----------------------------------------------------------------------
    def export_domain(self, domain: str) -> StagedModel:
        """A standalone copy of the network ``forward(., domain)`` computes.

        ``"shared"`` and ``"multibn"`` give a :class:`~transferlab.models._resnet.ResNet`,
        ``"adapters"`` an :class:`~transferlab.models._adapters.AdapterResNet`, holding
        the shared trunk and exactly ``domain``'s batch norms (with their running
        statistics), adapters and head. The tensors are copies; the export is in
        the same train/eval mode as this model. In eval mode its outputs are
        bit-identical to ``forward(x, domain)`` (same operations in the same order).
        """
        d = self.domain_index(domain)
        cls = AdapterResNet if self.variant == "adapters" else ResNet
        cfg = self.config
        model = cls(cfg["in_channels"], cfg["width"], cfg["blocks"], cfg["num_classes"][d])
        state = {"stages.stem.conv.weight": self.stem_conv.weight}
        state.update(_prefixed(self.stem_bn.pick(d), "stages.stem.bn."))
        for i, layer in enumerate(self.layers):
            for j, block in enumerate(layer):
                state.update(block.export_state(d, f"stages.layer{i + 1}.{j}."))
        state.update(_prefixed(self.heads[d], "head."))
        model.load_state_dict({k: v.detach() for k, v in state.items()}, strict=True)
        first = next(self.parameters())
        return model.to(device=first.device, dtype=first.dtype).train(self.training)


# -- joint checkpoints ----------------------------------------------------------------------
#: A joint multi-domain network: the document holds its constructor ``config`` (no ``arch``).
_JOINT_FORMAT = _Format(
    key=MULTIDOMAIN_KEY,
    version=_FORMAT_VERSION,
    fields={"config": dict},
    kind="multi-domain checkpoint",
    saved_by="save_multidomain",
    rebuild=lambda document: MultiDomainResNet(**document["config"]),
    describe=lambda document: f"a MultiDomainResNet with config {document['config']}",
)


def save_multidomain(
    path: str | os.PathLike[str], model: MultiDomainResNet, *, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write a :class:`MultiDomainResNet` and ``metadata`` to a safetensors file, atomically.

    The header holds one JSON document under ``"transferlab-multidomain"``:
    ``format_version``, the constructor ``config``, the SHA-256 of the tensors
    and the caller's ``metadata`` (JSON types). Nothing is pickled. Written by
    the writer of :func:`~transferlab.models._checkpoint.save_checkpoint`
    (atomic, parent folders created).

    Returns
    -------
    path : pathlib.Path
    """
    if not isinstance(model, MultiDomainResNet):
        raise ValueError(f"model must be a MultiDomainResNet; got {type(model).__name__}")
    return _save(path, _JOINT_FORMAT, model, {"config": model.config}, metadata)


def read_multidomain_metadata(path: str | os.PathLike[str], *, verify: bool = False) -> dict[str, Any]:
    """The document of a joint checkpoint (``config``, ``tensors_sha256``, ``metadata``), header only.

    With ``verify``, the tensors are read too and must match their recorded
    SHA-256 (ValueError otherwise), as for
    :func:`~transferlab.models._checkpoint.read_checkpoint_metadata`.
    """
    if verify:
        return _verify(path, _JOINT_FORMAT)
    return _read(path, _JOINT_FORMAT, tensors=False)[0]


def load_multidomain(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> MultiDomainResNet:
    """Rebuild the model saved by :func:`save_multidomain` (eval mode, on ``device``).

    Read, verified and rebuilt by the loader of
    :func:`~transferlab.models._checkpoint.load_checkpoint`, so both kinds of
    file fail the same way: the header's shapes are checked against the
    architecture (built on the ``meta`` device, size-capped) before anything is
    allocated, and half-precision tensors load into a float32 model.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is corrupt or truncated, is not a joint checkpoint, describes
        or holds more values than the loader's cap, or its tensors do not match
        their checksum or the architecture.
    """
    return _load(path, _JOINT_FORMAT, device=device)[0]
