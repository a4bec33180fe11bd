"""What dgmc knows is what is registered: one `Registry` per concept (families, networks,
datasets, objectives, methods, divergences, metrics, data readers, continual-learning
methods), read alike by the checker, lowering, training, evaluation, the report and the
command line, so that no code elsewhere branches on a name. Built-ins register
themselves on import; users add more from Python (`dgmc.register_family(...)` and
friends), from `--plugin MODULE`, or from installed packages through the entry-point
group `dgmc.plugins` (`dgmc.plugins`).

Each entry remembers where it came from, for `dgmc plugins` and for the message when a
name is registered twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import keyword
import re
from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import UserError

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LABEL = re.compile(r"[A-Za-z0-9_]+\Z")
_ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("origin", default="python")


class RegistryError(UserError):
    """A registration that cannot be taken: a name already taken, or one a spec cannot
    write."""


@contextlib.contextmanager
def origin(name: str) -> Iterator[None]:
    """Credit every registration made inside to `name` (a plugin module, an entry point)."""
    token = _ORIGIN.set(name)
    try:
        yield
    finally:
        _ORIGIN.reset(token)


class Registry(Generic[T]):
    """Name -> entry for one concept, in registration order, with each entry's origin.

    `spec_names=False` for a concept no spec names (metrics, data readers): its names need
    only be letters, digits and _, so that a metric may keep its paper's name ("1NN")."""

    def __init__(self, concept: str, *, spec_names: bool = True) -> None:
        self.concept = concept
        self.spec_names = spec_names
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def register(self, name: str, entry: T, *, origin: str | None = None, replace: bool = False) -> T:
        """Add `entry` under `name`; a name a spec cannot write, or one already taken
        (unless `replace`), is a `RegistryError`."""
        if not self._valid(name):
            raise RegistryError(f"{self.concept} name {name!r} is not a name a spec can write "
                                "(letters, digits and _, not starting with a digit)." if self.spec_names else
                                f"{self.concept} name {name!r} is not a name dgmc can use (letters, digits and _).")
        if name in self._entries and not replace:
            raise RegistryError(f"{self.concept} '{name}' is already registered (by {self._origins[name]}); "
                                "choose another name, or pass replace=True.")
        self._entries[name] = entry
        self._origins[name] = origin or _ORIGIN.get()
        return entry

    def _valid(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if not self.spec_names:
            return bool(_LABEL.match(name))
        return bool(_NAME.match(name)) and not keyword.iskeyword(name)

    def unregister(self, name: str) -> None:
        """Remove `name` (tests and plugins that clean up after themselves)."""
        self._entries.pop(name, None)
        self._origins.pop(name, None)

    def origin_of(self, name: str) -> str:
        return self._origins[name]

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._entries.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def values(self) -> Iterator[T]:
        return iter(self._entries.values())
