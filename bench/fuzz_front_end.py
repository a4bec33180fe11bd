"""Fuzz the front end: only `DgmError` may come out of decoding, parse, check and fmt.

    python bench/fuzz_front_end.py                 # 10,000 inputs, seed 0
    python bench/fuzz_front_end.py -n 50000 --seed 3

Inputs are grammar-aware mutations of the shipped specs (their tokens, from dgmc's own
lexer, deleted, duplicated, swapped, replaced by tokens of other kinds, or spliced
between specs), character-level mutations, byte-level mutations of the UTF-8 file (read
as the command line reads it), and random text. Any other exception is a
crash: its input is written to bench/crashes/ and the script exits 1.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import dgmc
from dgmc.frontend.fmt import format_text
from dgmc.frontend.parse import parser
from dgmc.frontend.source import BOM, decode

ROOT = Path(__file__).resolve().parents[1]
ALPHABET = "model{}[]()->,=:#.\n \tabcxyzt0123456789_+-eéÿ\x00"
KINDS = ("tokens", "tokens", "tokens", "chars", "bytes", "splice", "random")


def tokens(text: str) -> list[str]:
    """The spec as token texts with the whitespace between them kept."""
    out, last = [], 0
    for token in parser().lex(text):
        out += [text[last:token.start_pos], str(token)]
        last = token.end_pos
    return [*out, text[last:]]


def mutate_tokens(rng: random.Random, parts: list[str], pool: list[str]) -> str:
    parts = list(parts)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(parts))
        move = rng.choice(["delete", "duplicate", "swap", "replace", "insert"])
        if move == "delete":
            parts[i] = ""
        elif move == "duplicate":
            parts.insert(i, parts[i])
        elif move == "swap":
            j = rng.randrange(len(parts))
            parts[i], parts[j] = parts[j], parts[i]
        elif move == "replace":
            parts[i] = rng.choice(pool)
        else:
            parts.insert(i, " " + rng.choice(pool) + " ")
    return "".join(parts)


def mutate_chars(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(["", rng.choice(ALPHABET), text[i:i + 20]]) + text[i + rng.randint(0, 5):]
    return text


def splice(rng: random.Random, a: str, b: str) -> str:
    return a[: rng.randrange(len(a))] + b[rng.randrange(len(b)):]


def mutate_bytes(rng: random.Random, text: str) -> bytes:
    """The UTF-8 text with random bytes written over it: mostly not UTF-8 any more."""
    data = bytearray(text.encode("utf-8"))
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data) + 1)
        data[i:i + rng.randint(0, 2)] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.2:
        data[:0] = BOM
    return bytes(data)


def front_end(spec: str | bytes) -> None:
    """What the command line does with a spec file: decode, parse, check, format."""
    text = decode(spec, "fuzz.dgm") if isinstance(spec, bytes) else spec
    dgmc.loads(text, "fuzz.dgm")
    format_text(text)


def inputs(rng: random.Random, count: int):
    texts = [p.read_text() for p in sorted((ROOT / "specs").glob("*.dgm"))]
    texts += [p.read_text() for p in sorted((ROOT / "tests" / "good").glob("*.dgm"))]
    lexed = [tokens(t) for t in texts]
    pool = [*sorted({part for parts in lexed for part in parts[1::2]}), "t+1", "t-2", "1e999", "-0", "99999999999"]
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        if kind == "tokens":
            yield kind, mutate_tokens(rng, rng.choice(lexed), pool)
        elif kind == "chars":
            yield kind, mutate_chars(rng, rng.choice(texts))
        elif kind == "bytes":
            yield kind, mutate_bytes(rng, rng.choice(texts))
        elif kind == "splice":
            yield kind, splice(rng, rng.choice(texts), rng.choice(texts))
        else:
            yield kind, "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 200)))


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("-n", type=int, default=10_000)
    args.add_argument("--seed", type=int, default=0)
    options = args.parse_args()
    outcomes: Counter[str] = Counter()
    crashes = ROOT / "bench" / "crashes"
    started = time.perf_counter()
    for number, (kind, text) in enumerate(inputs(random.Random(options.seed), options.n)):
        try:
            front_end(text)
            outcomes[f"{kind}: accepted"] += 1
        except dgmc.DgmError as error:
            phase = error.diagnostics[0].phase
            outcomes[f"{kind}: {phase} error"] += 1
        except Exception:  # anything else is a bug
            outcomes[f"{kind}: CRASH"] += 1
            crashes.mkdir(exist_ok=True)
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            (crashes / f"crash-{options.seed}-{number}.dgm").write_bytes(data)
            print(traceback.format_exc(), file=sys.stderr)
    seconds = time.perf_counter() - started
    for outcome, count in sorted(outcomes.items()):
        print(f"{count:>7}  {outcome}")
    crashed = sum(c for o, c in outcomes.items() if o.endswith("CRASH"))
    print(f"{options.n} inputs in {seconds:.1f} s; {crashed} crashes")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
