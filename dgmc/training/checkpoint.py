"""Checkpoints: the weights of a compiled model plus what they were trained from.

A checkpoint records a hash of each part of the spec that determines the model it holds
(every node, time, data, the training recipe, and for a student the distillation
settings), so a checkpoint made from another spec is refused with a message that names
both specs and the parts that differ, instead of failing on shapes or, worse, loading
silently. Files are written atomically (temporary file, then rename) and read
with `weights_only=True`: no arbitrary objects are ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from .. import ir
from ..core.base import without_spans
from ..core.errors import UserError
from ..core.files import atomic
from ..lower import CompiledModel

FORMAT = "dgmc-checkpoint/2"
"""/2: the hash covers the student's distillation settings and is kept per part."""
_GRID = {"widths", "lambdas", "methods", "seeds"}
"""Distillation settings that choose which students exist, not how one is made (a
student's own width, method, lambda and seed are in its name and metrics)."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, corrupt, or made from another spec."""


_DISTILL_ADDED = {"stage": 0.5, "revive": 0}
"""Distillation settings added since, hashed only when not the value students were made
with before the setting existed (`stage`'s default; no revival), so that those students
keep matching where nothing changed, and stop matching where the default did."""
_ADDED = ("initial", "shape")
"""Node fields added since format 2, hashed only when set, so that the checkpoints of
specs that do not use them keep loading."""
_PARENT_ADDED = ("at",)
"""Edge fields added since, hashed only when set (a static node reading one step of a
sequence)."""
_DATA_ADDED = {"labelled": 1.0}
"""Data options added since, hashed only when not at their default (every label kept)."""
_TRAIN_ADDED = {"enumerate": [], "alpha": 0.0, "beta": 1.0, "k": 1, "aux": 1.0}
"""Training settings added since, hashed only when not at their default (nothing summed
out): the teachers of specs that do not use them keep loading."""
_NET_ADDED = ("shared",)
"""Network fields added since, hashed only when set (a shared network's name)."""
_EXPRS = "exprs"
"""The expressions of a conditional written out, on a node and on its guide (added
since): hashed only when there are some."""
_PARAMS_ADDED = {"Categorical": {"logits": ("computed",)}}
"""Parameters a family has let a spec fix since checkpoints were first written, at the
default under which the node's dump had none (a Categorical's computed logits), so that
its checkpoints keep loading; a fixed one is hashed."""


def parts(model: ir.Model, width: float | None = None) -> dict[str, str]:
    """A hash of each part of the spec that shapes the weights of the model at `width`:
    every node, the time range, the data and the training recipe; for a student also the
    distillation settings (its networks, divergences, optimiser). Without source spans:
    reformatting a spec keeps its checkpoints."""
    dump = _without_unset_nets(without_spans(model.model_dump(mode="json", include={
        "name", "time", "nodes", "data", "train", "distill"})))
    data = {k: v for k, v in (dump["data"] or {}).items()  # the file's digest, not its path
            if k != "source" and (k not in _DATA_ADDED or v != _DATA_ADDED[k])}
    train = {k: v for k, v in (dump["train"] or {}).items() if k not in _TRAIN_ADDED or v != _TRAIN_ADDED[k]} \
        if dump["train"] else None
    found = {"model name": dump["name"], "time": dump["time"], "data": data, "train": train}
    found.update((f"node '{node['name']}'", _node_part(node)) for node in dump["nodes"])
    if width is not None:
        found["distill"] = {k: v for k, v in dump["distill"].items()
                            if k not in _GRID and (k not in _DISTILL_ADDED or v != _DISTILL_ADDED[k])}
    return {key: _digest(value) for key, value in found.items()}


def _without_unset_nets(dump: Any) -> Any:
    """The dump with the network fields of `_NET_ADDED` left out wherever unset."""
    if isinstance(dump, dict):
        return {k: _without_unset_nets(v) for k, v in dump.items() if not (k in _NET_ADDED and v is None)}
    if isinstance(dump, list):
        return [_without_unset_nets(v) for v in dump]
    return dump


def _node_part(node: dict[str, Any]) -> dict[str, Any]:
    """A node's dump as hashed: the fields and parameters added since left out at their
    defaults (`_ADDED`, `_PARAMS_ADDED`)."""
    added = _PARAMS_ADDED.get(node["type"], {})
    params = {k: v for k, v in node["params"].items() if v not in added.get(k, ())}
    hashed = {k: (params if k == "params" else v) for k, v in node.items() if v is not None or k not in _ADDED}
    for part in (hashed, hashed.get("guide") or {}):
        if not part.get(_EXPRS, True):
            part.pop(_EXPRS)
    for edges in ("parents", "guide"):
        found = hashed.get(edges)
        parents = found.get("parents") if edges == "guide" and found else found if edges == "parents" else None
        for parent in parents or ():
            for k in _PARENT_ADDED:
                if parent.get(k) is None:
                    parent.pop(k, None)
    return hashed


def spec_hash(model: ir.Model, width: float | None = None) -> str:
    """One hash of `parts`: the teacher's (`width` None), or a student's."""
    return _digest(parts(model, width))


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def save(path: Path, compiled: CompiledModel, meta: dict[str, Any]) -> Path:
    payload = {
        "format": FORMAT, "spec_hash": spec_hash(compiled.ir, compiled.width), "spec_name": compiled.ir.name,
        "parts": parts(compiled.ir, compiled.width), "width": compiled.width,
        "data_digest": compiled.ir.data.digest if compiled.ir.data else None,
        "state_dict": compiled.state_dict(), "meta": meta,
    }
    with atomic(path) as temporary:
        torch.save(payload, temporary)
    return path


def load(path: Path, compiled: CompiledModel, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load weights into `compiled`; return the checkpoint's `meta`. Every failure is a
    `CheckpointError` that names the checkpoint's spec and the spec given."""
    payload = _read(path, map_location)
    _same_model(path, payload, compiled.ir, compiled.width)
    try:
        compiled.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"'{path}' claims to hold spec '{payload['spec_name']}', the spec given, but its "
                              f"weights do not fit it ({type(error).__name__}): the file was altered; "
                              "retrain it.") from None
    return payload["meta"]


def with_recorded_data(path: Path, model: ir.Model) -> ir.Model:
    """`model` knowing the data file its checkpoint at `path` was trained on (its content
    hash), when it was given none: data-free distillation of a `data file` spec needs
    the teacher, not the file."""
    data = model.data
    if data is None or data.dataset != ir.FILE_DATASET or data.digest is not None:
        return model
    digest = _read(path, "cpu").get("data_digest")
    digest = digest if isinstance(digest, str) else None
    return model.model_copy(update={"data": data.model_copy(update={"digest": digest})})


def recorded_width(path: Path) -> float | None:
    """The width of the model a checkpoint holds (None: a teacher)."""
    return _read(path, "cpu")["width"]


def matches(path: Path, model: ir.Model, width: float | None = None) -> bool:
    """Whether `path` is a readable checkpoint of exactly this model (spec and width),
    so that a run may reuse it instead of making it again."""
    try:
        _same_model(path, _read(path, "cpu"), model, width)
    except CheckpointError:
        return False
    return True


_FIELDS = {"spec_hash": str, "spec_name": str, "parts": dict, "state_dict": dict, "meta": dict}


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """The payload of a dgmc checkpoint, its fields checked; nothing but tensors and
    plain containers is ever unpickled (`weights_only`)."""
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at '{path}'.")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles before refusing them
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # weights_only refuses anything but tensors and plain containers
        raise CheckpointError(f"'{path}' is not a readable dgmc checkpoint: it is not a torch file, or it holds "
                              "objects other than weights, which are never unpickled.") from None
    except Exception:  # cut short or altered: torch raises OSError, RuntimeError, EOFError, KeyError...
        raise CheckpointError(f"'{path}' is not a readable dgmc checkpoint: the file is truncated or damaged "
                              "(a copy or a write cut short, or bytes changed); retrain it, or copy it "
                              "again.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        older = isinstance(payload, dict) and str(payload.get("format", "")).startswith("dgmc-checkpoint/")
        raise CheckpointError(f"'{path}' is a checkpoint of an older dgmc: retrain it." if older
                              else f"'{path}' is not a dgmc checkpoint.")
    wrong = [k for k, kind in _FIELDS.items() if not isinstance(payload.get(k), kind)]
    width = payload.get("width")
    if wrong or "width" not in payload or not (width is None or isinstance(width, float | int)):
        raise CheckpointError(f"'{path}' is a damaged dgmc checkpoint (field {(wrong or ['width'])[0]}).")
    return payload


def _same_model(path: Path, payload: dict[str, Any], model: ir.Model, width: float | None) -> None:
    if payload["width"] != width:
        raise CheckpointError(f"'{path}' holds {_role(payload['width'])}, not {_role(width)}.")
    given, name = model.name, payload["spec_name"]
    expected = spec_hash(model, width)
    if payload["spec_hash"] != expected:
        ours = parts(model, width)
        theirs = {str(k): v for k, v in payload["parts"].items() if isinstance(v, str)}
        differ = [k for k in dict.fromkeys([*theirs, *ours]) if theirs.get(k) != ours.get(k)]
        raise CheckpointError(
            f"'{path}' was made from spec '{name}' (hash {payload['spec_hash']}), but the spec given, "
            f"'{given}' (hash {expected}), differs in {_listing(differ)}: retrain it, or give the spec it came from.")


def _role(width: float | None) -> str:
    return "the teacher" if width is None else f"a student of width {width:g}"


def _listing(items: list[str]) -> str:
    items = items or ["its hash"]
    return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")
