"""Build a zoo from its recipe: train each expert once, cache it with provenance.

Each member is a safetensors checkpoint whose metadata records the member
recipe and its digest, its role and initialisation, the source task
fingerprint, the training config, the final source accuracy, the wall time and
the library versions. A joint multi-domain network is cached beside its members
(``md-<variant>.joint.safetensors``, with its own digest); its members are its
domains, exported as standalone models.

Members depend on other build units: a ``from-generic`` member on its generic
member, a multi-domain member on its joint network. The build visits the units
in a dependency order (a topological sort of that graph), and a member is
current when its checkpoint has the recipe's digest and was made from the
weights its parent has now (the parent's tensor SHA-256 is recorded), so a
changed parent rebuilds its dependants and nothing else. An interrupted build
resumes where it stopped and a second build costs nothing.

A cached unit is also checked against the SHA-256 of its tensors recorded in
its header (one read of each file, no model built): a corrupt checkpoint (a
flipped bit, a truncated file) is rebuilt from its recipe, with one line that
names it and says why. ``manifest.json`` is written only when its content
changes, so a build that finds every unit cached writes nothing at all (a
read-only ``TRANSFERLAB_HOME`` serves a built zoo).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import platform
import time
import zlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from transferlab import __version__
from transferlab._atomic import atomic_write_bytes
from transferlab._paths import home
from transferlab.data import Task, concat_tasks, load_sized
from transferlab.models import (
    MultiDomainResNet,
    StagedModel,
    build_for,
    check_device,
    load_checkpoint,
    load_multidomain,
    read_checkpoint_metadata,
    read_multidomain_metadata,
    save_checkpoint,
    save_multidomain,
)
from transferlab.train import TrainConfig, fit, fit_multidomain
from transferlab.zoo._recipe import JointRecipe, MemberRecipe, ZooRecipe, load_recipe


@dataclass(frozen=True)
class ZooMember:
    """One built expert: where its checkpoint is, what it was trained on, and how.

    ``role`` is ``"single"``, ``"generic"``, ``"from-generic"`` or ``"multidomain"``
    (see :class:`~transferlab.zoo._recipe.MemberRecipe`).
    """

    name: str
    arch: str
    source: str
    checkpoint: Path
    metadata: dict
    role: str = "single"

    @property
    def source_accuracy(self) -> float:
        return float(self.metadata["metrics"]["source_test_accuracy"])

    @property
    def init(self) -> str:
        """``"scratch"``, ``"generic:<member>"`` or ``"joint:md-<variant>"``."""
        return str(self.metadata.get("init", "scratch"))

    def load(self, device: str = "cpu") -> StagedModel:
        return load_checkpoint(self.checkpoint, device=device).model


@dataclass(frozen=True)
class Zoo:
    recipe: ZooRecipe
    root: Path
    members: tuple[ZooMember, ...]

    def __iter__(self):
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, name: str) -> ZooMember:
        for member in self.members:
            if member.name == name:
                return member
        raise ValueError(f"no member {name!r} in zoo {self.recipe.name!r}; members are {[m.name for m in self.members]}")

    def by_role(self, role: str) -> tuple[ZooMember, ...]:
        """The members of one role, in zoo order."""
        return tuple(m for m in self.members if m.role == role)


def zoo_root(recipe: ZooRecipe, root: str | Path | None = None) -> Path:
    """The folder of a built zoo: ``<root or $TRANSFERLAB_HOME/zoo>/<recipe name>-<preset>``."""
    base = Path(root) if root is not None else home() / "zoo"
    return base / f"{recipe.name}-{recipe.preset}"


def _member_seed(recipe_seed: int, name: str) -> int:
    # Independent of the member's position, so adding a member never retrains the others.
    return (recipe_seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31)


def _member_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.safetensors"


def _joint_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.joint.safetensors"


def _parent_path(folder: Path, member: MemberRecipe) -> Path | None:
    if member.parent is None:
        return None
    if member.role == "multidomain":
        return _joint_path(folder, member.parent)
    return _member_path(folder, member.parent)


def _tensors_sha(path: Path, *, joint: bool) -> str | None:
    """The recorded SHA-256 of a checkpoint's tensors (a member's or, with ``joint``, a joint network's),
    None if unreadable."""
    reader = read_multidomain_metadata if joint else read_checkpoint_metadata
    try:
        return reader(path)["tensors_sha256"]
    except (ValueError, OSError):
        return None


#: Why a unit is not current (besides corruption, whose reason is the loader's message).
_MISSING, _STALE = "missing", "stale"


def _corrupt(reason: str) -> bool:
    """Whether a :func:`_staleness` reason says the checkpoint is corrupt (rather than missing or stale)."""
    return reason not in (_MISSING, _STALE)


def _verified(path: Path, *, joint: bool) -> str | None:
    """None if the checkpoint's tensors match their recorded SHA-256; otherwise the loader's message."""
    reader = read_multidomain_metadata if joint else read_checkpoint_metadata
    try:
        reader(path, verify=True)
    except (ValueError, OSError) as err:
        return str(err)
    return None


def _staleness(path: Path, member: MemberRecipe) -> str | None:
    """None if the member's checkpoint is current, else why not: missing, stale, or the corruption found.

    Current: the checkpoint has this recipe's digest, was made from its parent's
    current weights and its tensors match their recorded SHA-256.
    """
    if not path.exists():
        return _MISSING
    try:
        meta = read_checkpoint_metadata(path)["metadata"]
    except (ValueError, OSError) as err:
        return str(err)  # an unreadable header: corrupt, and its recipe unknown
    if meta.get("member_digest") != member.digest:
        return _STALE
    parent = _parent_path(path.parent, member)
    if parent is not None:
        recorded = meta.get("init_from", {}).get("tensors_sha256")
        if recorded is None or recorded != _tensors_sha(parent, joint=member.role == "multidomain"):
            return _STALE
    return _verified(path, joint=False)


def _is_current(path: Path, member: MemberRecipe) -> bool:
    """The checkpoint has this recipe's digest, was made from its parent's current weights, and is intact."""
    return _staleness(path, member) is None


def _joint_staleness(path: Path, joint: JointRecipe) -> str | None:
    """None if the joint network's checkpoint is current and intact, else why not (as :func:`_staleness`)."""
    if not path.exists():
        return _MISSING
    try:
        digest = read_multidomain_metadata(path)["metadata"].get("joint_digest")
    except (ValueError, OSError) as err:
        return str(err)
    if digest != joint.digest:
        return _STALE
    return _verified(path, joint=True)


def _report_rebuild(console: Console, name: str, reason: str) -> None:
    """One line: which unit is rebuilt and why (its checkpoint is corrupt)."""
    console.print(f"[bold]zoo[/] rebuilding {escape(name)}: {escape(reason)}", soft_wrap=True)


def _member_metadata(path: Path) -> dict:
    return read_checkpoint_metadata(path)["metadata"]


def _provenance() -> dict:
    return {
        "transferlab": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _task_record(task: Task) -> dict:
    return {"name": task.name, "fingerprint": task.fingerprint, "recipe": task.recipe}


def _timed(train: Callable[..., object], *args, **kwargs) -> tuple[object, float]:
    """``(train(*args, **kwargs), wall seconds)``."""
    start = time.perf_counter()
    result = train(*args, **kwargs)
    return result, time.perf_counter() - start


def _record(config: TrainConfig | dict, metrics: dict) -> dict:
    """The metadata every built unit ends with: its training config, its metrics, and the provenance."""
    return {
        "train_config": config.to_dict() if isinstance(config, TrainConfig) else config,
        "metrics": metrics,
        "provenance": _provenance(),
    }


def _load_source(spec: str, member: MemberRecipe | JointRecipe) -> Task:
    # The recipe's sizes and seed are defaults: an option written in the source spec wins.
    return load_sized(spec, defaults={"train_per_class": member.train_per_class,
                                      "test_per_class": member.test_per_class, "seed": member.train.seed})


def load_member_task(member: MemberRecipe) -> Task:
    """The task a member was (or will be) trained on: its source at the recipe's sizes.

    A generic member's task is :func:`~transferlab.data._ops.concat_tasks` of
    its ``parts`` (class names ``"<source>/<class>"``); any other member's is
    its ``source``. For another size, pass ``dataclasses.replace(member,
    train_per_class=..., test_per_class=...)``; a member recipe comes back from
    a checkpoint with ``MemberRecipe.from_dict(metadata["member"])``.
    """
    if not isinstance(member, MemberRecipe):
        raise ValueError(f"member must be a MemberRecipe; got {type(member).__name__}")
    if member.role == "generic":
        return concat_tasks({spec: _load_source(spec, member) for spec in member.parts}, name=f"union({member.source})")
    return _load_source(member.source, member)


def _train_member(member: MemberRecipe, path: Path, device: str, progress: bool) -> None:
    """Train a single, generic or from-generic member and save its checkpoint at ``path``."""
    task = load_member_task(member)
    seed = _member_seed(member.train.seed, member.name)
    extra: dict = {}
    parent = _parent_path(path.parent, member)
    if parent is None:
        model = build_for(member.arch, task.image_shape, task.n_classes, seed=seed, **member.arch_config)
    else:
        checkpoint = load_checkpoint(parent)
        model = checkpoint.model
        if checkpoint.arch != member.arch:
            raise ValueError(f"member {member.name!r} is a {member.arch!r} but its init {parent} is a {checkpoint.arch!r}")
        model.replace_head(task.n_classes, seed=seed)
        extra["init_from"] = {
            "member": member.parent,
            "member_digest": checkpoint.metadata.get("member_digest"),
            "tensors_sha256": checkpoint.tensors_sha256,
        }
    config = member.train.replace(seed=seed, device=device)
    result, seconds = _timed(fit, model, task, config, eval_data=task, progress=progress)
    metrics = {
        "source_test_accuracy": result.final_eval_accuracy,
        "source_train_loss": result.history[-1]["train_loss"],
        "seconds": seconds,
    }
    save_checkpoint(
        path,
        model.to("cpu"),
        metadata={
            "member": member.to_dict(),
            "member_digest": member.digest,
            "role": member.role,
            "init": member.init,
            **extra,
            "source_task": _task_record(task),
            "class_names": list(task.class_names),
            **_record(config, metrics),
        },
    )


def _train_joint(joint: JointRecipe, path: Path, device: str, progress: bool) -> None:
    """Train one multi-domain network on all its sources and save it at ``path``."""
    tasks = {spec: _load_source(spec, joint) for spec in joint.sources}
    seed = _member_seed(joint.train.seed, joint.name)
    channels = {task.image_shape[0] for task in tasks.values()}
    if len(channels) != 1:
        raise ValueError(f"joint model {joint.name!r} needs sources with one channel count; got {sorted(channels)}")
    model = MultiDomainResNet(
        list(tasks), [t.n_classes for t in tasks.values()], joint.variant,
        in_channels=channels.pop(), seed=seed, **joint.arch_config,
    )  # fmt: skip
    config = joint.train.replace(seed=seed, device=device)
    accuracy, seconds = _timed(fit_multidomain, model, tasks, config, progress=progress)
    save_multidomain(
        path,
        model.to("cpu"),
        metadata={
            "joint": joint.to_dict(),
            "joint_digest": joint.digest,
            "source_tasks": {spec: _task_record(task) for spec, task in tasks.items()},
            "class_names": {spec: list(task.class_names) for spec, task in tasks.items()},
            **_record(config, {"source_test_accuracy": accuracy, "seconds": seconds}),
        },
    )


def _export_member(member: MemberRecipe, path: Path, joint_path: Path) -> None:
    """Cut ``member.domain`` out of its joint network and save it as a standalone checkpoint."""
    document = read_multidomain_metadata(joint_path)
    joint_meta = document["metadata"]
    start = time.perf_counter()
    model = load_multidomain(joint_path).export_domain(member.domain)
    metrics = {
        # The export computes what the joint network computes for this domain, bit for bit.
        "source_test_accuracy": joint_meta["metrics"]["source_test_accuracy"][member.domain],
        "source_train_loss": None,
        "seconds": time.perf_counter() - start,
        "joint_seconds": joint_meta["metrics"]["seconds"],
    }
    save_checkpoint(
        path,
        model,
        metadata={
            "member": member.to_dict(),
            "member_digest": member.digest,
            "role": member.role,
            "init": member.init,
            "variant": member.variant,
            "domain": member.domain,
            "init_from": {
                "joint": member.parent,
                "joint_digest": joint_meta["joint_digest"],
                "tensors_sha256": document["tensors_sha256"],
            },
            "source_task": joint_meta["source_tasks"][member.domain],
            "class_names": joint_meta["class_names"][member.domain],
            **_record(joint_meta["train_config"], metrics),
        },
    )


def build_order(units: Sequence, key: Callable[[object], Hashable], parents: Callable[[object], list]) -> list:
    """A topological order of ``units``: every unit after the units it depends on.

    Stable: among the units whose parents are placed, the first in ``units``
    comes next (Kahn's algorithm), so independent units keep their order.

    Parameters
    ----------
    units : sequence
    key : callable
        The name of a unit.
    parents : callable
        The names of the units a unit depends on.

    Raises
    ------
    ValueError
        A parent that is not among the units, or a dependency cycle.
    """
    names = {key(u) for u in units}
    for unit in units:
        unknown = [p for p in parents(unit) if p not in names]
        if unknown:
            raise ValueError(f"unit {key(unit)!r} depends on {unknown}, which are not in the build")
    placed: set = set()
    order: list = []
    pending = list(units)
    while pending:
        ready = next((u for u in pending if all(p in placed for p in parents(u))), None)
        if ready is None:
            raise ValueError(f"dependency cycle among {[key(u) for u in pending]}")
        pending.remove(ready)
        placed.add(key(ready))
        order.append(ready)
    return order


def _units_in_order(recipe: ZooRecipe) -> list[MemberRecipe | JointRecipe]:
    units = [*recipe.all_members, *recipe.joints]
    return build_order(
        units,
        key=lambda u: ("joint" if isinstance(u, JointRecipe) else "member", u.name),
        parents=lambda u: [] if isinstance(u, JointRecipe) or u.parent is None else [
            ("joint" if u.role == "multidomain" else "member", u.parent)
        ],
    )


@contextlib.contextmanager
def _claim(folder: Path, name: str):
    """Hold ``<folder>/<name>.lock`` exclusively while ``name`` is trained.

    A second ``build_zoo`` on the same ``TRANSFERLAB_HOME`` waits here for the
    member another process is training, then finds it built (the caller checks
    again), so no member is trained twice. The lock is the kernel's (``flock``):
    it goes with its process, so a killed build never leaves a stale claim.
    Only a member that must be trained takes it: a fully cached build writes nothing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_zoo(
    recipe: str | Path = "builtin",
    preset: str = "small",
    *,
    root: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    console: Console | None = None,
) -> Zoo:
    """Build every member of a recipe that is not cached yet; return the zoo.

    Units are visited in dependency order (:func:`build_order`): a generic
    member before the members that start from it, a joint multi-domain network
    before the domains exported from it.

    Every cached checkpoint is verified against the SHA-256 of its tensors
    (one read of the file). A corrupt one is rebuilt from its recipe, which
    gives the weights a fresh build gives (training is deterministic), and the
    console says so in one line: ``zoo rebuilding <member>: checkpoint <path>
    is corrupt: ...``. ``manifest.json`` is written only when its content
    changes: a build that finds everything cached writes nothing.

    Parameters
    ----------
    recipe : str or Path
        A built-in recipe name (see :func:`available_recipes`) or a TOML path.
    preset : str
        ``"tiny"``, ``"small"`` or ``"full"`` for the built-in recipe.
    root : path, optional
        Where zoos live; default ``$TRANSFERLAB_HOME/zoo``.
    device : str
        Training device.
    progress : bool
        Show progress bars and one line per member.

    Returns
    -------
    Zoo
        Members in :attr:`~transferlab.zoo._recipe.ZooRecipe.all_members` order.
    """
    check_device(device)
    resolved = load_recipe(recipe, preset)
    folder = zoo_root(resolved, root)
    console = console or Console(stderr=True, quiet=not progress)
    built: dict[str, ZooMember] = {}
    joints: dict[str, dict] = {}
    order = _units_in_order(resolved)
    n_members = len(resolved.all_members)
    for unit in order:
        if isinstance(unit, JointRecipe):
            path = _joint_path(folder, unit.name)
            reason = _joint_staleness(path, unit)
            if reason is not None:
                with _claim(folder, unit.name):
                    reason = _joint_staleness(path, unit)  # another build may have trained it meanwhile
                    if reason is not None:
                        if _corrupt(reason):
                            _report_rebuild(console, unit.name, reason)
                        console.print(f"[bold]zoo[/] training the joint {escape(unit.variant)} multi-domain "
                                      f"network {escape(unit.name)}")
                        _train_joint(unit, path, device, progress)
            joints[unit.name] = {"name": unit.name, "variant": unit.variant, "checkpoint": path.name,
                                 **read_multidomain_metadata(path)["metadata"]}
            continue
        path = _member_path(folder, unit.name)
        status = "cached"
        if _staleness(path, unit) is not None:
            with _claim(folder, unit.name):
                reason = _staleness(path, unit)  # another build may have trained it meanwhile
                if reason is not None and _corrupt(reason):
                    _report_rebuild(console, unit.name, reason)
                if reason is None:
                    status = "cached"
                elif unit.role == "multidomain":
                    _export_member(unit, path, _joint_path(folder, unit.parent))
                    status = "exported"
                else:
                    console.print(f"[bold]zoo[/] training {escape(unit.name)} ({len(built) + 1}/{n_members})")
                    _train_member(unit, path, device, progress)
                    status = "trained"
        metadata = _member_metadata(path)
        built[unit.name] = ZooMember(unit.name, unit.arch, unit.source, path, metadata, unit.role)
        console.print(
            f"[bold]zoo[/] {escape(f'{unit.name:<32}')} {status:<8} "
            f"source accuracy {metadata['metrics']['source_test_accuracy']:.3f}"
        )
        if status != "cached":  # progress survives an interruption; a cached unit changes nothing
            _write_manifest(folder, resolved, [built[m.name] for m in resolved.all_members if m.name in built], joints)
    _write_manifest(folder, resolved, [built[m.name] for m in resolved.all_members], joints)
    return Zoo(resolved, folder, tuple(built[m.name] for m in resolved.all_members))


def _write_manifest(folder: Path, recipe: ZooRecipe, members: list[ZooMember], joints: dict[str, dict]) -> bool:
    """Write ``manifest.json`` if its content changed; whether it was written."""
    manifest = {
        "recipe": recipe.name,
        "preset": recipe.preset,
        "description": recipe.description,
        "recipe_digest": recipe.digest,
        "members": [
            {
                "name": m.name,
                "role": m.role,
                "arch": m.arch,
                "source": m.source,
                "init": m.init,
                **{k: m.metadata[k] for k in ("variant", "domain") if k in m.metadata},
                "checkpoint": m.checkpoint.name,
                "member_digest": m.metadata["member_digest"],
                "source_task_fingerprint": m.metadata["source_task"]["fingerprint"],
                "metrics": m.metadata["metrics"],
                "train_config": m.metadata["train_config"],
                "provenance": m.metadata["provenance"],
            }
            for m in members
        ],
        "joints": [
            {
                "name": j["name"],
                "variant": j["variant"],
                "checkpoint": j["checkpoint"],
                "joint_digest": j["joint_digest"],
                "source_task_fingerprints": {s: t["fingerprint"] for s, t in j["source_tasks"].items()},
                "metrics": j["metrics"],
                "train_config": j["train_config"],
                "provenance": j["provenance"],
            }
            for j in joints.values()
        ],
    }
    content = json.dumps(manifest, indent=2).encode()
    path = folder / "manifest.json"
    try:
        if path.read_bytes() == content:
            return False
    except OSError:  # missing or unreadable: write it
        pass
    atomic_write_bytes(path, content)
    return True


def zoo_members(recipe: str | Path = "builtin", preset: str = "small", *, root: str | Path | None = None) -> list[dict]:
    """The members of a recipe: role, init, whether each is built, and its source accuracy."""
    resolved = load_recipe(recipe, preset)
    folder = zoo_root(resolved, root)
    rows = []
    for member in resolved.all_members:
        path = _member_path(folder, member.name)
        built = _is_current(path, member)
        accuracy = _member_metadata(path)["metrics"]["source_test_accuracy"] if built else None
        rows.append({"name": member.name, "role": member.role, "arch": member.arch, "source": member.source,
                     "init": member.init, "built": built, "source_accuracy": accuracy})
    return rows
