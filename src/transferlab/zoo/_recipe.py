"""Zoo recipes: TOML data that says which experts to train, on what, and how.

A recipe names architectures and source task specs; its single-domain members
are their cross product. ``generic = true`` adds generic experts (trained on the
union of the sources) and experts fine-tuned from them; a ``[multidomain]``
table adds the domains of multi-domain networks. Presets (``tiny``, ``small``,
``full``) override the sources, sizes, architecture configs, training config
and both switches. Unknown keys are rejected so that a typo never silently
trains the wrong zoo.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from transferlab._validation import check_int, check_int_sequence
from transferlab.data import DATA_VERSION
from transferlab.models import MULTIDOMAIN_VARIANTS
from transferlab.train import TrainConfig

_TOP_KEYS = {"name", "description", "archs", "sources", "seed", "arch", "presets", "generic", "multidomain"}
_PRESET_KEYS = {"sources", "archs", "train_per_class", "test_per_class", "arch", "train", "generic", "multidomain"}
_MULTIDOMAIN_KEYS = {"variants", "width", "blocks"}

#: What a member is, in the order ``zoo list`` shows them.
ROLES = ("single", "generic", "from-generic", "multidomain")
#: The registered architecture each variant exports one domain as.
EXPORT_ARCH = {"shared": "resnet", "multibn": "resnet", "adapters": "adapter_resnet"}


def _digest(payload: dict) -> str:
    text = json.dumps({**payload, "data_version": DATA_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MemberRecipe:
    """How to make one expert.

    ``role`` says how:

    - ``"single"``: ``arch`` trained from scratch on ``source``;
    - ``"generic"``: ``arch`` trained from scratch on the union of ``parts``
      (:func:`~transferlab.data._ops.concat_tasks` of all the recipe's sources);
    - ``"from-generic"``: the generic member's stages with a new head, trained
      on ``source`` (``init = "generic:<member>"``);
    - ``"multidomain"``: domain ``domain`` exported from the joint multi-domain
      model of ``variant`` (``init = "joint:md-<variant>"``), not trained alone.

    ``init_digest`` is the digest of the unit the member starts from, so the
    member's own :attr:`digest` changes (and it is rebuilt) when that unit's
    recipe changes.
    """

    name: str
    arch: str
    arch_config: dict
    source: str
    train_per_class: int | None
    test_per_class: int | None
    train: TrainConfig
    role: str = "single"
    init: str = "scratch"
    init_digest: str | None = None
    parts: tuple[str, ...] = ()
    variant: str | None = None
    domain: str | None = None

    @property
    def parent(self) -> str | None:
        """Name of the build unit this member starts from (a generic member or a joint model), or None."""
        return None if self.init == "scratch" else self.init.split(":", 1)[1]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "arch": self.arch,
            "arch_config": self.arch_config,
            "source": self.source,
            "train_per_class": self.train_per_class,
            "test_per_class": self.test_per_class,
            "train": self.train.to_dict(),
            "role": self.role,
            "init": self.init,
            "init_digest": self.init_digest,
            "parts": list(self.parts),
            "variant": self.variant,
            "domain": self.domain,
        }

    @classmethod
    def from_dict(cls, values: dict) -> MemberRecipe:
        """Rebuild a recipe from :meth:`to_dict` (e.g. a checkpoint's ``metadata["member"]``)."""
        fields = dict(values)
        fields["train"] = TrainConfig.from_dict(fields["train"])
        fields["parts"] = tuple(fields.get("parts", ()))
        return cls(**fields)

    @property
    def digest(self) -> str:
        """Digest of everything that determines the trained weights (the init's digest included)."""
        return _digest(self.to_dict())


@dataclass(frozen=True)
class JointRecipe:
    """A multi-domain network trained once on all ``sources``; its domains become members."""

    name: str
    variant: str
    arch_config: dict
    sources: tuple[str, ...]
    train_per_class: int | None
    test_per_class: int | None
    train: TrainConfig

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "variant": self.variant,
            "arch_config": self.arch_config,
            "sources": list(self.sources),
            "train_per_class": self.train_per_class,
            "test_per_class": self.test_per_class,
            "train": self.train.to_dict(),
        }

    @property
    def digest(self) -> str:
        return _digest(self.to_dict())


@dataclass(frozen=True)
class ZooRecipe:
    """A resolved recipe preset.

    ``members`` are the single-domain experts trained from scratch (archs x
    sources); ``generic``, ``from_generic`` and ``multidomain`` the members of
    the other roles, ``joints`` the multi-domain networks those come from.
    :attr:`all_members` lists every member.
    """

    name: str
    preset: str
    description: str
    members: tuple[MemberRecipe, ...]
    generic: tuple[MemberRecipe, ...] = ()
    from_generic: tuple[MemberRecipe, ...] = ()
    multidomain: tuple[MemberRecipe, ...] = ()
    joints: tuple[JointRecipe, ...] = ()

    @property
    def all_members(self) -> tuple[MemberRecipe, ...]:
        """Every member: single-domain, generic, from-generic, then multi-domain."""
        return self.members + self.generic + self.from_generic + self.multidomain

    @property
    def digest(self) -> str:
        payload = json.dumps([m.digest for m in self.all_members] + [j.digest for j in self.joints])
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def available_recipes() -> list[str]:
    """Names of the recipes shipped with transferlab."""
    folder = resources.files("transferlab.zoo") / "recipes"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def _read_recipe_text(recipe: str | Path) -> tuple[str, str]:
    path = Path(recipe)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ValueError(f"recipe file {str(path)!r} does not exist")
        return path.read_text(), str(path)
    names = available_recipes()
    if recipe not in names:
        close = difflib.get_close_matches(str(recipe), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown zoo recipe {recipe!r}; built-in recipes are {names} or a path to a .toml file{hint}")
    text = (resources.files("transferlab.zoo") / "recipes" / f"{recipe}.toml").read_text()
    return text, str(recipe)


def _reject_unknown(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed keys are {sorted(allowed)}")


def _clean(source: str) -> str:
    return source.replace(":", "-").replace(",", "-").replace("=", "")


def _member_name(arch: str, source: str) -> str:
    return f"{arch}-{_clean(source)}"


def _resolve_generic(data: dict, over: dict, where: str) -> bool:
    value = over.get("generic", data.get("generic", False))
    if not isinstance(value, bool):
        raise ValueError(f"generic must be true or false in {where}; got {value!r}")
    return value


def _resolve_multidomain(data: dict, over: dict, where: str) -> dict | None:
    """The effective ``[multidomain]`` table, or None when the preset has none."""
    base = data.get("multidomain", False)
    if not isinstance(base, (bool, dict)):
        raise ValueError(f"multidomain must be a table or true/false in {where}; got {base!r}")
    value = over.get("multidomain", base)
    if not isinstance(value, (bool, dict)):
        raise ValueError(f"multidomain must be a table or true/false in the preset of {where}; got {value!r}")
    if value is False:
        return None
    if value is True:
        if not isinstance(base, dict):
            raise ValueError(f"multidomain = true in {where} needs a [multidomain] table to switch on")
        table = dict(base)
    else:
        table = {**(base if isinstance(base, dict) else {}), **value}
    _reject_unknown(table, _MULTIDOMAIN_KEYS, f"the multidomain table of {where}")
    variants = table.get("variants", list(MULTIDOMAIN_VARIANTS))
    if isinstance(variants, str) or not isinstance(variants, list):
        raise ValueError(f"multidomain.variants must be a list of {list(MULTIDOMAIN_VARIANTS)} in {where}; got {variants!r}")
    unknown = [v for v in variants if v not in MULTIDOMAIN_VARIANTS]
    if unknown or len(set(variants)) != len(variants):
        raise ValueError(
            f"multidomain.variants must list distinct variants among {list(MULTIDOMAIN_VARIANTS)} in {where}; "
            f"got {variants!r}"
        )
    if not variants:
        return None
    config = {"width": check_int(table.get("width", 16), "multidomain.width")}
    config["blocks"] = check_int_sequence(table.get("blocks", [1, 1, 1]), "multidomain.blocks")
    return {"variants": list(variants), "arch_config": config}


def load_recipe(recipe: str | Path = "builtin", preset: str = "small") -> ZooRecipe:
    """Read a recipe (a built-in name or a ``.toml`` path) and resolve one preset.

    A recipe lists ``archs`` and ``sources`` (their product are the
    single-domain members ``<arch>-<source>``), per-arch configs ``[arch.<name>]``,
    a ``seed``, and ``[presets.<name>]`` tables that override ``sources``,
    ``archs``, ``train_per_class``, ``test_per_class``, ``arch`` and ``train``.
    Two more keys, at the top and overridable per preset, add members:

    - ``generic = true``: per arch a member ``<arch>-generic`` trained on the
      union of all sources, and per (arch, source) a member
      ``<arch>-<source>-from-generic`` that starts from its stages;
    - ``[multidomain]`` with ``variants`` (``"shared"``, ``"multibn"``,
      ``"adapters"``), ``width`` and ``blocks``: per variant one joint
      multi-domain ResNet on all sources, and per source a member
      ``md-<variant>-<source>``, that domain's parameters. A preset sets
      ``multidomain = false`` to drop it, or a table to override keys.

    Every member trains with the preset's sizes and training config.

    Parameters
    ----------
    recipe : str or Path
        ``"builtin"`` or a path to a TOML file of the same shape.
    preset : str
        A key of the recipe's ``[presets]`` table.
    """
    text, where = _read_recipe_text(recipe)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"recipe {where} is not valid TOML: {exc}") from None
    _reject_unknown(data, _TOP_KEYS, f"recipe {where}")
    presets = data.get("presets", {})
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r} for recipe {where}; presets are {sorted(presets)}")
    over = presets[preset]
    _reject_unknown(over, _PRESET_KEYS, f"preset {preset!r} of recipe {where}")

    archs = list(over.get("archs", data.get("archs", [])))
    sources = list(over.get("sources", data.get("sources", [])))
    if not archs or not sources:
        raise ValueError(f"recipe {where} (preset {preset!r}) must list at least one arch and one source")
    if len(set(sources)) != len(sources) or len(set(archs)) != len(archs):
        raise ValueError(f"recipe {where} (preset {preset!r}) lists an arch or a source twice: {archs}, {sources}")
    base_arch = data.get("arch", {})
    over_arch = over.get("arch", {})
    train = TrainConfig().replace(seed=int(data.get("seed", 0))).replace(**over.get("train", {}))
    sizes = {"train_per_class": over.get("train_per_class"), "test_per_class": over.get("test_per_class")}
    generic_on = _resolve_generic(data, over, f"recipe {where} (preset {preset!r})")
    multidomain = _resolve_multidomain(data, over, f"recipe {where} (preset {preset!r})")

    members, generic, from_generic = [], [], []
    for arch in archs:
        config = {**base_arch.get(arch, {}), **over_arch.get(arch, {})}
        common = {"arch": arch, "arch_config": config, "train": train, **sizes}
        for source in sources:
            members.append(MemberRecipe(name=_member_name(arch, source), source=source, **common))
        if not generic_on:
            continue
        base = MemberRecipe(
            name=f"{arch}-generic", source="+".join(sources), role="generic", parts=tuple(sources), **common
        )
        generic.append(base)
        for source in sources:
            from_generic.append(
                MemberRecipe(
                    name=f"{_member_name(arch, source)}-from-generic",
                    source=source,
                    role="from-generic",
                    init=f"generic:{base.name}",
                    init_digest=base.digest,
                    **common,
                )
            )

    joints, md_members = [], []
    for variant in (multidomain or {}).get("variants", []):
        joint = JointRecipe(
            name=f"md-{variant}",
            variant=variant,
            arch_config=multidomain["arch_config"],
            sources=tuple(sources),
            train=train,
            **sizes,
        )
        joints.append(joint)
        for source in sources:
            md_members.append(
                MemberRecipe(
                    name=f"md-{variant}-{_clean(source)}",
                    arch=EXPORT_ARCH[variant],
                    arch_config=multidomain["arch_config"],
                    source=source,
                    train=train,
                    role="multidomain",
                    init=f"joint:{joint.name}",
                    init_digest=joint.digest,
                    variant=variant,
                    domain=source,
                    **sizes,
                )
            )

    resolved = ZooRecipe(
        name=str(data.get("name", where)),
        preset=preset,
        description=str(data.get("description", "")),
        members=tuple(members),
        generic=tuple(generic),
        from_generic=tuple(from_generic),
        multidomain=tuple(md_members),
        joints=tuple(joints),
    )
    names = [m.name for m in resolved.all_members] + [j.name for j in joints]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"recipe {where} gives two members the same name: {duplicated}")
    return resolved
