"""Checkpoints: the weights of a compiled model plus what they were trained from.

A checkpoint records a hash of the parts of the spec that determine the model it holds
(nodes, time, data, and the training recipe for a teacher), so a checkpoint made from
another spec is refused with a clear message instead of failing on shapes or, worse,
loading silently. Files are written atomically (temporary file, then rename) and read
with `weights_only=True`: no arbitrary objects are ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from .. import ir
from ..base import without_spans
from ..errors import UserError
from ..files import atomic
from ..lower import CompiledModel

FORMAT = "dgmc-checkpoint/1"


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, corrupt, or made from another spec."""


def spec_hash(model: ir.Model) -> str:
    """A hash of what determines a trained teacher: nodes, time, data and training
    recipe, without source spans (reformatting a spec keeps its checkpoints) and without
    the distillation settings (changing them keeps the teacher)."""
    dump = model.model_dump(mode="json", include={"name", "consts", "time", "nodes", "data", "train"})
    text = json.dumps(without_spans(dump), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(path: Path, compiled: CompiledModel, meta: dict[str, Any]) -> Path:
    payload = {
        "format": FORMAT, "spec_hash": spec_hash(compiled.ir), "spec_name": compiled.ir.name,
        "width": compiled.width, "state_dict": compiled.state_dict(), "meta": meta,
    }
    with atomic(path) as temporary:
        torch.save(payload, temporary)
    return path


def load(path: Path, compiled: CompiledModel, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load weights into `compiled`; return the checkpoint's `meta`."""
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at '{path}'.")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles before refusing them
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, not a torch file, or holding objects
        raise CheckpointError(f"'{path}' is not a readable dgmc checkpoint ({type(error).__name__}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a dgmc checkpoint.")
    expected = spec_hash(compiled.ir)
    if payload["spec_hash"] != expected:
        raise CheckpointError(
            f"'{path}' was trained from another version of spec '{payload['spec_name']}' "
            f"(hash {payload['spec_hash']}, this spec {expected}): retrain it, or pass the spec it came from.")
    if payload["width"] != compiled.width:
        raise CheckpointError(f"'{path}' holds a model of width {payload['width']}, not {compiled.width}.")
    compiled.load_state_dict(payload["state_dict"])
    return payload["meta"]

