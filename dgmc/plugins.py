"""Plugins: code of the user's that registers families, networks, datasets (or any other
registry's entries) before a spec is read.

- From Python: call `dgmc.register_family`, `register_network`, `register_dataset`.
- From the command line: `--plugin MODULE` (repeatable) imports MODULE, a dotted module
  name importable from the working directory or the environment, or runs the Python file
  at a path (`--plugin plugins/gated_mlp.py`); from Python, `dgmc.load_plugin` does the
  same.
- From an installed package: an entry point in the group `dgmc.plugins`, e.g. in its
  pyproject.toml `[project.entry-points."dgmc.plugins"] mine = "my_package.dgmc_plugin"`;
  dgmc loads every one the first time it reads a spec.

A plugin module registers on import; an entry point may instead name a function, which
is called with no arguments. Every registration is credited to its plugin (`dgmc plugins`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import traceback
from importlib import metadata
from pathlib import Path

from .core.errors import UserError, words
from .core.registry import origin

GROUP = "dgmc.plugins"


class PluginError(UserError):
    """A plugin that cannot be loaded: not found, or failing on import."""


def load_module(name: str | Path) -> None:
    """Load the plugin `name` (`--plugin`, `dgmc.load_plugin`): a dotted module name,
    imported, or a Python file's path (a `Path`, or a name with a `/` or ending in
    `.py`), run as the module named by its stem; its registrations credited to it."""
    said = words("plugin", str(name))
    if "" not in sys.path:
        sys.path.insert(0, "")  # a module beside the spec, as `python -m` would find it
    with origin(f"plugin {name}"):
        try:
            if _is_path(name):
                _import_file(Path(name), said)
            else:
                importlib.import_module(name)
        except UserError:
            raise
        except Exception as error:  # the plugin's own code: say what it raised and where, without dgmc's traceback
            missing = isinstance(error, ModuleNotFoundError) and error.name
            if missing and not _is_path(name) and name.startswith(missing):
                raise PluginError(f"{said}: no module named '{missing}' (give a module importable from the "
                                  "working directory or the environment, or a plugin file's path).") from None
            what = error.msg if isinstance(error, SyntaxError) else str(error)  # its str repeats the place
            raise PluginError(f"{said} failed to import{_where(error)}: {type(error).__name__}: {what}.") from None


def _is_path(name: str | Path) -> bool:
    """Whether a plugin is named by its file's path rather than by a module name (which
    has no `/` and does not end in `.py`)."""
    return isinstance(name, Path) or name.endswith(".py") or "/" in name or os.sep in name


def _import_file(path: Path, said: str) -> None:
    """Run the plugin file at `path` as the module named by its stem, once, as an import
    would (a second load of the same file does nothing)."""
    if not path.is_file():
        raise PluginError(f"{said}: no such file '{path}'." if not path.exists() else
                          f"{said}: '{path}' is not a file (give a Python file ending in .py).")
    if path.suffix != ".py":
        raise PluginError(f"{said}: '{path}' is not a Python file (give a file ending in .py).")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        there = getattr(loaded, "__file__", None)
        if there is not None and Path(there).resolve() == path.resolve():
            return
        raise PluginError(f"{said}: a module named '{name}' is already loaded (from {there or 'built in'}); "
                          "rename the plugin file.")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does, so that pickling its classes finds them
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _where(error: BaseException) -> str:
    """Where in the plugin's own code `error` was raised, as ", at 'FILE', line N": the
    line of a syntax error, else the innermost frame in the plugin's files (the module
    the import ran, or its package's folder); "" when none is known."""
    if isinstance(error, SyntaxError) and error.filename:
        return f", at '{error.filename}', line {error.lineno}"
    machinery = (Path(__file__), Path(importlib.__file__).parent)  # this loader and Python's import system
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith("<")
              and not any(p == Path(f.filename) or p in Path(f.filename).parents for p in machinery)]
    if not frames:
        return ""
    top = Path(frames[0].filename)  # the plugin's module, run by the import
    root = top.parent if top.name == "__init__.py" else top
    frame = [f for f in frames if Path(f.filename) == root or root in Path(f.filename).parents][-1]
    return f", at '{frame.filename}', line {frame.lineno}"


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
                raise PluginError(f"The plugin '{entry.name}' of the package {package} failed to load"
                                  f"{_where(error)}: {type(error).__name__}: {error}.") from None
        loaded.append(entry.name)
    return tuple(loaded)
