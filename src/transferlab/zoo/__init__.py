"""Model zoos: TOML recipes, built once and cached with provenance."""

from transferlab.zoo._build import Zoo, ZooMember, build_order, build_zoo, load_member_task, zoo_members, zoo_root
from transferlab.zoo._recipe import (
    MULTIDOMAIN_VARIANTS,
    ROLES,
    JointRecipe,
    MemberRecipe,
    ZooRecipe,
    available_recipes,
    load_recipe,
)

__all__ = [
    "build_zoo",
    "zoo_members",
    "zoo_root",
    "Zoo",
    "ZooMember",
    "load_recipe",
    "available_recipes",
    "ZooRecipe",
    "MemberRecipe",
    "JointRecipe",
    "load_member_task",
    "build_order",
    "ROLES",
    "MULTIDOMAIN_VARIANTS",
]
