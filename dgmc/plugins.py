"""Plugins: code of the user's that registers families, networks, datasets (or any other
registry's entries) before a spec is read.

- From Python: call `dgmc.register_family`, `register_network`, `register_dataset`.
- From the command line: `--plugin MODULE` (repeatable) imports MODULE, a dotted module
  name importable from the working directory or the environment.
- From an installed package: an entry point in the group `dgmc.plugins`, e.g. in its
  pyproject.toml `[project.entry-points."dgmc.plugins"] mine = "my_package.dgmc_plugin"`;
  dgmc loads every one the first time it reads a spec.

A plugin module registers on import; an entry point may instead name a function, which
is called with no arguments. Every registration is credited to its plugin (`dgmc plugins`).
"""

from __future__ import annotations

import functools
import importlib
import sys
from importlib import metadata

from .errors import UserError
from .registry import Registry, origin

GROUP = "dgmc.plugins"


class PluginError(UserError):
    """A plugin that cannot be loaded: not found, or failing on import."""


def load_module(name: str) -> None:
    """Import the plugin module `name` (`--plugin`), crediting its registrations to it."""
    if "" not in sys.path:
        sys.path.insert(0, "")  # a module beside the spec, as `python -m` would find it
    with origin(f"plugin {name}"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and name.startswith(error.name):
                raise PluginError(f"--plugin {name}: no module named '{error.name}' (give a module importable "
                                  "from the working directory or the environment).") from None
            raise PluginError(f"--plugin {name} failed to import: {error}.") from None
        except UserError:
            raise
        except Exception as error:  # the plugin's own code: say what it raised, without dgmc's traceback
            raise PluginError(f"--plugin {name} failed to import: {type(error).__name__}: {error}.") from None


@functools.cache
def load_entry_points() -> tuple[str, ...]:
    """Load every plugin installed under the entry-point group `dgmc.plugins`, once;
    the names of those loaded."""
    loaded = []
    for entry in metadata.entry_points(group=GROUP):
        package = entry.dist.name if entry.dist is not None else "?"
        with origin(f"entry point {entry.name} ({package})"):
            try:
                target = entry.load()
                if callable(target):
                    target()
            except UserError:
                raise
            except Exception as error:  # an installed package's code
                raise PluginError(f"The plugin '{entry.name}' of the package {package} failed to load: "
                                  f"{type(error).__name__}: {error}.") from None
        loaded.append(entry.name)
    return tuple(loaded)


def registries() -> dict[str, Registry]:
    """Every registry, by concept, in the order `dgmc plugins` lists them."""
    from .datasets import DATASETS
    from .families import FAMILIES
    from .losses.divergences import DIVERGENCES
    from .methods import METHODS
    from .networks import NETWORKS
    from .objectives import OBJECTIVES

    return {"families": FAMILIES, "networks": NETWORKS, "datasets": DATASETS, "divergences": DIVERGENCES,
            "objectives": OBJECTIVES, "methods": METHODS}


def listing() -> str:
    """What is registered and where each entry came from (`dgmc plugins`)."""
    lines = []
    for concept, registry in registries().items():
        lines.append(f"{concept}:")
        width = max(map(len, registry), default=0)
        lines += [f"  {name:<{width}}  {registry.origin_of(name)}" for name in registry]
    return "\n".join(lines) + "\n"
