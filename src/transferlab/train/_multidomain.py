"""Joint training of a multi-domain network on several tasks at once.

The loop of :func:`~transferlab.train._fit.fit` (:func:`~transferlab.train._loop.run_epochs`:
Nesterov SGD, weight decay, step LR schedule, seeded batch order, finite-loss
checks, progress bar) with one stream of batches per domain, interleaved by
:func:`~transferlab.train._loop.interleave_batches`. Each step is one domain's
batch through that domain's forward pass, so the shared trunk sees every
domain and each domain's own parameters (head, batch norms, adapters) move only
on that domain's batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from transferlab.models import MultiDomainResNet
from transferlab.train._config import TrainConfig
from transferlab.train._fit import _to_tensors, as_arrays
from transferlab.train._loop import Stream, interleave_batches, resolve_budget, run_epochs, trainable_parameters

__all__ = ["fit_multidomain", "interleave_batches"]


def _check_tasks(model: MultiDomainResNet, tasks: Any) -> dict[str, tuple]:
    if not isinstance(tasks, Mapping):
        raise ValueError(f"tasks must be a mapping {{domain: Task}}; got {type(tasks).__name__}")
    missing = [d for d in model.domains if d not in tasks]
    extra = [d for d in tasks if d not in model.domains]
    if missing or extra:
        raise ValueError(
            f"tasks must have one task per domain of the model {list(model.domains)}; "
            f"missing {missing}, unexpected {extra}"
        )
    arrays = {}
    for d, k in zip(model.domains, model.config["num_classes"]):
        train = as_arrays(tasks[d], "train", f"tasks[{d!r}]", k)
        test = as_arrays(tasks[d], "test", f"tasks[{d!r}] (test split)", k)
        if train[0].shape[1] != model.config["in_channels"]:
            raise ValueError(
                f"tasks[{d!r}] images have {train[0].shape[1]} channels; the model expects "
                f"in_channels={model.config['in_channels']}"
            )
        arrays[d] = (train, test)
    return arrays


def fit_multidomain(
    model: MultiDomainResNet,
    tasks: Mapping[str, Any],
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
) -> dict[str, float]:
    """Train a :class:`~transferlab.models.MultiDomainResNet` jointly on one task per domain.

    An epoch visits every training sample of every domain once, in batches of
    ``config.batch_size`` drawn from a fresh seeded permutation of each domain,
    interleaved across domains by :func:`interleave_batches` (size-proportional
    round-robin). Each step minimises domain ``d``'s mean cross-entropy of
    ``model(x, d)`` in the loop :func:`~transferlab.train._fit.fit` runs
    (:func:`~transferlab.train._loop.run_epochs`: :class:`torch.optim.SGD` with
    Nesterov momentum, weight decay, the step schedule of
    :class:`~transferlab.train._config.TrainConfig` stepped once per epoch, the
    same finite-loss checks and progress bar):

    .. math::

        \\theta \\leftarrow \\theta - \\eta_e\\, \\mathrm{SGD}\\Big(\\nabla_\\theta
        \\tfrac{1}{|B_d|}\\textstyle\\sum_{i \\in B_d} \\ell(f_\\theta(x_i, d), y_i)\\Big).

    Gradients are reset to ``None`` before each step, so the parameters of the
    other domains (heads, batch norms, adapters) are left untouched by it: no
    update, no weight decay, no momentum (the joint training of Rebuffi, Bilen,
    Vedaldi 2017, "Learning multiple visual domains with residual adapters").

    Parameters
    ----------
    model : MultiDomainResNet
        Trained in place and moved to ``config.device``.
    tasks : mapping of str to Task
        Exactly one task per domain of the model, with that domain's number of
        classes; the train split trains, the test split is evaluated at the end.
    config : TrainConfig
        ``seed`` fixes the batch order; same model initialisation and seed give
        bit-identical weights on the CPU.
    progress : bool, default True

    Returns
    -------
    dict of str to float
        Test accuracy of each domain after the last epoch, in eval mode.

    Raises
    ------
    ValueError
        A model that is not a ``MultiDomainResNet``, tasks that do not match its
        domains, class counts or channels, a model without trainable
        parameters, or a non-finite loss or parameter
        (:class:`~transferlab.train._loop.NonFiniteLossError`, also a
        ``FloatingPointError``).
    """
    if not isinstance(model, MultiDomainResNet):
        raise ValueError(f"model must be a MultiDomainResNet; got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig; got {type(config).__name__}")
    arrays = _check_tasks(model, tasks)
    domains = list(model.domains)
    device = torch.device(config.device)
    model.to(device)
    params = trainable_parameters(model)

    def stream(domain: str, split: int) -> Stream:
        return Stream(*_to_tensors(*arrays[domain][split], device), lambda images: model(images, domain))

    train = [stream(d, 0) for d in domains]
    test = [stream(d, 1) for d in domains]
    config = resolve_budget(config, [s.n_samples for s in train])  # a step budget counts every domain's batches
    run = run_epochs(
        model,
        train,
        config,
        params=params,
        eval_streams=test,
        eval_epochs=(config.epochs,),
        description="multi-domain",
        progress=progress,
    )
    return {d: accuracy for d, (_, accuracy) in zip(domains, run.last_evaluation)}
