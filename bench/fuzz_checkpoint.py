"""Fuzz the checkpoint loader: only `CheckpointError` may come out of loading a file.

    python bench/fuzz_checkpoint.py                 # 10,000 inputs, seed 0
    python bench/fuzz_checkpoint.py -n 50000 --seed 3

Inputs are random bytes, real checkpoints truncated or with bytes flipped, inserted or
deleted, real payloads with a field removed or replaced by a value of another type (the
state dict too: tensors dropped, reshaped, retyped or replaced), and whole checkpoints of
other specs and widths. Each goes through `checkpoint.load` into the Helmholtz machine's
teacher or student and through `checkpoint.matches`. Any exception but `CheckpointError`
is a crash: its input is written to bench/crashes/ and the script exits 1.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import torch

import dgmc
from dgmc.lower import CompiledModel, compile_model
from dgmc.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
HM = ROOT / "specs" / "hm.dgm"
WIDTH = 0.25
KINDS = ("random", "truncated", "mutated", "payload", "other")


def _saved(compiled) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return checkpoint.save(Path(folder) / "c.pt", compiled, {"seed": 0}).read_bytes()


def originals() -> dict[str, bytes]:
    """Real checkpoints: the Helmholtz machine's teacher and student (the targets), and
    checkpoints of other shipped specs."""
    torch.manual_seed(0)
    hm = dgmc.load(HM)
    made = {"hm teacher": _saved(compile_model(hm)), "hm student": _saved(compile_model(hm, WIDTH))}
    for name in ("vae", "hvae_depth2", "classifier"):
        made[f"{name} teacher"] = _saved(compile_model(dgmc.load(ROOT / "specs" / f"{name}.dgm")))
    return made


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        move = rng.choice(["flip", "set", "insert", "delete"])
        if move == "flip":
            data[i] ^= 1 << rng.randrange(8)
        elif move == "set":
            data[i] = rng.randrange(256)
        elif move == "insert":
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            del data[i:i + rng.randint(1, 16)]
    return bytes(data)


_ODD_VALUES = (None, 0, -1, 3.5, float("nan"), "", "x", b"bytes", [], {}, (1, 2), True, torch.zeros(2),
               torch.zeros(0), {"a": torch.ones(1)}, [torch.ones(3)])


def _mutate_payload(rng: random.Random, data: bytes) -> bytes:
    """A real payload with fields removed or replaced, state-dict tensors included."""
    payload = torch.load(io.BytesIO(data), weights_only=True)
    for _ in range(rng.randint(1, 3)):
        weights = payload.get("state_dict")
        target = weights if isinstance(weights, dict) and rng.random() < 0.5 else payload
        key = rng.choice([*target, "extra"])
        move = rng.choice(["delete", "replace", "reshape", "retype"])
        if move == "delete":
            target.pop(key, None)
        elif move == "replace" or not isinstance(target.get(key), torch.Tensor):
            target[key] = rng.choice(_ODD_VALUES)
        elif move == "reshape":
            target[key] = torch.zeros(tuple(rng.randint(0, 4) for _ in range(rng.randint(0, 3))))
        else:
            target[key] = target[key].to(rng.choice([torch.int64, torch.float16, torch.bool, torch.float64]))
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def inputs(rng: random.Random, count: int, made: dict[str, bytes]) -> Iterator[tuple[str, str, bytes]]:
    """(kind, target, file contents); the target is `teacher` or `student`."""
    targets = [made["hm teacher"], made["hm student"]]
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        target = rng.choice(["teacher", "student"])
        base = rng.choice(targets)
        if kind == "random":
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2048)))
        elif kind == "truncated":
            data = base[:rng.randrange(len(base))]
        elif kind == "mutated":
            data = _mutate_bytes(rng, base)
        elif kind == "payload":
            data = _mutate_payload(rng, base)
        else:
            data = rng.choice(list(made.values()))
        yield kind, target, data


def attempt(path: Path, target: str, models: dict[str, CompiledModel]) -> str:
    """Load `path` into the target; 'loaded' or 'refused' (a `CheckpointError`)."""
    compiled = models[target]
    try:
        checkpoint.matches(path, compiled.ir, compiled.width)
        checkpoint.load(path, compiled)
    except checkpoint.CheckpointError as error:
        assert str(error) and "Traceback" not in str(error)
        return "refused"
    return "loaded"


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("-n", type=int, default=10_000)
    args.add_argument("--seed", type=int, default=0)
    options = args.parse_args()
    made = originals()
    hm = dgmc.load(HM)
    models = {"teacher": compile_model(hm), "student": compile_model(hm, WIDTH)}
    outcomes: Counter[str] = Counter()
    crashes = ROOT / "bench" / "crashes"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.pt"
        for number, (kind, target, data) in enumerate(inputs(random.Random(options.seed), options.n, made)):
            path.write_bytes(data)
            try:
                outcomes[f"{kind}: {attempt(path, target, models)}"] += 1
            except Exception:  # anything else is a bug
                outcomes[f"{kind}: CRASH"] += 1
                crashes.mkdir(exist_ok=True)
                (crashes / f"checkpoint-{options.seed}-{number}-{target}.pt").write_bytes(data)
                print(traceback.format_exc(), file=sys.stderr)
    seconds = time.perf_counter() - started
    for outcome, count in sorted(outcomes.items()):
        print(f"{count:>7}  {outcome}")
    crashed = sum(c for o, c in outcomes.items() if o.endswith("CRASH"))
    print(f"{options.n} inputs in {seconds:.1f} s; {crashed} crashes")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
