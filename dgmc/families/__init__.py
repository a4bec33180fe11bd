"""Distribution families: the registry `FAMILIES` of `Family` objects (see `base`), and
the built-in ones (`builtin`). `dgmc.register_family(MyFamily(...))` adds one."""

from __future__ import annotations

from ..core.registry import Registry, RegistryError
from .base import (
    DETERMINISTIC_TYPES,
    DOMAINS,
    MIN_SCALE,
    NODE_DOMAINS,
    TINY,
    Domain,
    Family,
    Params,
    ParamSpec,
    param_spec,
)
from .builtin import BUILTIN

FAMILIES: Registry[Family] = Registry("family")
for _family in BUILTIN:
    FAMILIES.register(_family.name, _family, origin="dgmc")


def register_family(family: Family, *, replace: bool = False) -> Family:
    """Make `family` known to specs under `family.name`."""
    if not isinstance(family, Family):
        raise RegistryError(f"register_family takes a dgmc.Family instance, not {type(family).__name__}.")
    if family.domain not in DOMAINS:
        raise RegistryError(f"family {family.name}: unknown domain '{family.domain}' (known: {', '.join(DOMAINS)}).")
    return FAMILIES.register(family.name, family, replace=replace)


__all__ = [
    "DETERMINISTIC_TYPES", "DOMAINS", "FAMILIES", "MIN_SCALE", "NODE_DOMAINS", "TINY", "Domain", "Family",
    "ParamSpec", "Params", "param_spec", "register_family",
]
