"""Fuzz the data readers: only `DataError` may come out of `read_table`.

    python bench/fuzz_data_readers.py                 # 10,000 inputs, seed 0
    python bench/fuzz_data_readers.py -n 50000 --seed 3

Inputs are valid CSV, TSV, .npy and .npz files and image folders mutated at the byte level
(truncation, bit flips, inserted, deleted and repeated bytes) or in their headers (CSV header
rows, .npy header text, .npz members' headers, PNG IHDR fields with a valid CRC); random bytes
under each suffix, bare or behind each format's magic; and structurally odd inputs (ragged
CSV, .npy headers declaring huge, negative or 0-d shapes and object dtypes, .npz archives of
mismatched, duplicated, encrypted or unknown-method members, zero-byte images, folders that
are not image folders). A table that is accepted is read through: every value of every column
(a memory map past the end of its file would kill the process here rather than later), and
`where` of its first and last rows. A DataError must name the input. Anything else is a
crash: its input is copied to bench/crashes/, its traceback printed, and the script exits 1.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import struct
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from dgmc.datasets import DataError
from dgmc.datasets.readers import read_table

ROOT = Path(__file__).resolve().parents[1]
Folder = dict[str, bytes | None]  # relative name -> file bytes, or None for an empty folder
Input = bytes | Folder
SUFFIXES = (".csv", ".tsv", ".tab", ".npy", ".npz")
INTERESTING = b"\x00\xff\x7f\x80,\t\n\r\"'0123456789.-+eE{}()[]:"
HUGE = ("2**63", "9223372036854775807", "10**30", "-1", "0", "1", "4294967296", "3, -5", "")
DESCRS = ("'|O'", "'<U5'", "'>f8'", "'|V0'", "'<c16'", "'<M8[s]'", "[('a', '<f8')]", "[('a', '|O')]", "('<f8', (3,))",
          "[]", "'|b1'", "'<f2'", "[('', '|V4')]", "'zz'", "[('a',)]", "()", "{}", "[[]]")


def npy_bytes(values: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array(stream, values, version=version)
    return stream.getvalue()


def raw_npy(header: str, data: bytes, version: int = 1) -> bytes:
    """A .npy file around any header text, as a hostile writer could make one."""
    text = header.encode("latin-1", "replace")
    length = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + length + text + data


def npz_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return stream.getvalue()


def image_bytes(mode: str, size: tuple[int, int], fmt: str = "PNG", seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    stream = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(stream, fmt)
    return stream.getvalue()


def seeds() -> dict[str, list[Input]]:
    """Valid inputs per suffix ('' for image folders), to mutate."""
    structured = np.zeros(4, dtype=[("a", "<f4"), ("b", "<i2", (2,))])
    arrays = {"x": np.arange(12.0).reshape(4, 3), "y": np.array([0, 1, 1, 0]), "z": np.ones((4, 2, 2), np.uint8)}
    return {
        ".csv": [b"a,b\n1,2\n3,4.5\n", b"\xef\xbb\xbfx, y ,z\r\n\r\n1,nan,-inf\r\n\"2\",3e5,4\r\n",
                 b"only\n1\n2\n\n3\n"],
        ".tsv": [b"a\tb\n1\t2\n3\t4\n"],
        ".tab": [b"p\tq\tr\n0.5\t1\t2\n"],
        ".npy": [npy_bytes(np.arange(12.0).reshape(4, 3)), npy_bytes(np.arange(5, dtype=np.int8)),
                 npy_bytes(structured), npy_bytes(np.asfortranarray(np.ones((3, 2)))),
                 npy_bytes(np.array([True, False]), version=(2, 0)),
                 npy_bytes(np.zeros(2, dtype=[("温", "<f8")]), version=(3, 0))],
        ".npz": [npz_bytes({f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}),
                 npz_bytes({f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}, zipfile.ZIP_DEFLATED)],
        "": [{"a/1.png": image_bytes("RGB", (6, 5)), "a/2.jpg": image_bytes("RGB", (6, 5), "JPEG", 1),
              "b/3.png": image_bytes("P", (6, 5), seed=2), "b/4.PNG": image_bytes("RGBA", (6, 5), seed=3)},
             {"x/1.png": image_bytes("L", (3, 7)), "y/2.png": image_bytes("LA", (3, 7), seed=1)}],
    }


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data) + 1)
        move = rng.choice(["truncate", "flip", "insert", "delete", "repeat", "overwrite"])
        if move == "truncate":
            del data[i:]
        elif move == "flip" and i < len(data):
            data[i] ^= 1 << rng.randrange(8)
        elif move == "insert":
            data[i:i] = bytes(rng.choice(INTERESTING) for _ in range(rng.randint(1, 8)))
        elif move == "delete":
            del data[i:i + rng.randint(1, 16)]
        elif move == "repeat":
            data[i:i] = data[i:i + rng.randint(1, 64)]
        elif i < len(data):
            data[i] = rng.choice(INTERESTING)
    return bytes(data)


def mutate_folder(rng: random.Random, folder: Folder) -> Folder:
    folder = dict(folder)
    name = rng.choice(sorted(folder))
    move = rng.choice(["bytes", "bytes", "bytes", "empty", "drop", "rename", "ihdr"])
    if move == "bytes" and folder[name] is not None:
        folder[name] = mutate_bytes(rng, folder[name])
    elif move == "empty":
        folder[name] = b""
    elif move == "drop":
        del folder[name]
    elif move == "rename":
        folder[name.rsplit(".", 1)[0] + rng.choice([".png", ".jpeg", ".txt", ".png/", ""])] = folder.pop(name)
    elif folder[name] is not None:
        folder[name] = edit_ihdr(rng, folder[name])
    return folder


def edit_ihdr(rng: random.Random, png: bytes) -> bytes:
    """A PNG with its width, height, bit depth or colour type changed and its CRC made right
    again, so the decoder gets past its checksum to the declared size."""
    if len(png) < 33 or png[12:16] != b"IHDR":
        return png
    fields = bytearray(png[16:29])
    if rng.random() < 0.5:
        fields[rng.choice([0, 4])] = 0
        fields[rng.choice([0, 4]) + 1: rng.choice([0, 4]) + 4] = rng.randbytes(3)
    else:
        fields[rng.choice([8, 9, 10, 11, 12])] = rng.choice([0, 1, 2, 3, 4, 6, 8, 16, 255])
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + fields))
    return png[:16] + bytes(fields) + crc + png[33:]


def edit_header(rng: random.Random, suffix: str, data: bytes) -> bytes:
    """The input's header rewritten: a CSV header row, or a .npy header's text (shape, descr,
    fortran_order), the data left as they were."""
    if suffix in (".csv", ".tsv", ".tab"):
        first, _, rest = data.partition(b"\n")
        cells = first.split(b"," if suffix == ".csv" else b"\t")
        cells[rng.randrange(len(cells))] = rng.choice([b"", b" ", cells[0], b"\xff", b'"', b"a\x00"])
        return (b"," if suffix == ".csv" else b"\t").join(cells) + b"\n" + rest
    shape = f"({', '.join(rng.choice(HUGE) for _ in range(rng.randint(0, 3)))},)"
    descr = rng.choice([*DESCRS, "'<f8'", "'<i8'"])
    header = f"{{'descr': {descr}, 'fortran_order': {rng.choice(['False', 'True', '1', 'None'])}, 'shape': {shape}, }}"
    return raw_npy(header.ljust(rng.choice([0, 118])) + "\n", data[128:] if rng.random() < 0.7 else b"",
                   rng.choice([1, 1, 2, 3]))


def odd_input(rng: random.Random) -> tuple[str, Input]:
    """A structurally odd input: well-formed as bytes, wrong as a table (each built only
    when drawn: some are large)."""
    small = npy_bytes(np.arange(3.0))
    stored = npz_bytes({"a.npy": small})
    shape = f"({rng.choice(HUGE)}, {rng.choice(HUGE)})"
    makers: list[Callable[[], tuple[str, Input]]] = [
        lambda: (".csv", ragged_csv(rng)), lambda: (".csv", b"a,b\n"), lambda: (".csv", b"\n\n \n"),
        lambda: (".tsv", b"a\tb\n1\t" + b"9" * 200_000), lambda: (".csv", b"a\n1\r2\n"),
        lambda: (".csv", b"a\n\x001\n"), lambda: (".tsv", "α\tβ\n1\t2\n".encode("utf-16")),
        lambda: (".npy", raw_npy(f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}}}", bytes(64))),
        lambda: (".npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': ()}", bytes(8))),
        lambda: (".npy", npy_bytes(np.array([1, "a", None], dtype=object))), lambda: (".npy", b""),
        lambda: (".npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}" + " " * 70_000, b"", 2)),
        lambda: (".npy", raw_npy("(" * 300 + ")" * 300, b"")),
        lambda: (".npz", npz_bytes({"a.npy": small, "b.npy": npy_bytes(np.arange(4.0))})),
        lambda: (".npz", npz_bytes({})), lambda: (".npz", npz_bytes({"a.npy": small, "a": small})),
        lambda: (".npz", npz_bytes({"dir/": b"", "a.npy": small})), lambda: (".npz", npz_bytes({"a.txt": b"hi"})),
        lambda: (".npz", npz_bytes({"a.npy": npy_bytes(np.array(2.0))})),
        lambda: (".npz", zip_field(stored, "flags", 1)),
        lambda: (".npz", zip_field(stored, "method", rng.choice([1, 6, 14, 99]))),
        lambda: (".npz", zip_field(stored, "size", rng.choice([0, 1, 2**31, 2**32 - 1]))),
        lambda: (".npz", zip_field(stored, "offset", rng.choice([1, 2**31, 2**32 - 1]))),
        lambda: ("", {"a/1.png": b""}), lambda: ("", {"a/": None}), lambda: ("", {}),
        lambda: ("", {"1.png": image_bytes("RGB", (4, 4))}),
        lambda: ("", {"a/1.png": image_bytes("RGB", (4, 4)), "b/2.png": image_bytes("RGB", (5, 4))}),
        lambda: ("", {"a/1.png": image_bytes("L", (4, 4)), "a/2.jpg": image_bytes("RGB", (4, 4), "JPEG")}),
        lambda: ("", {"a/1.png": image_bytes("I;16", (4, 4))}), lambda: ("", {"a/x.png/": None, "a/1.gif": b"GIF"}),
        lambda: (".json", b"{}"), lambda: (".npy", None), lambda: ("", None),
    ]
    return rng.choice(makers)()


def ragged_csv(rng: random.Random) -> bytes:
    rows = [",".join("1" * rng.randint(0, 2) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 6))]
    return "\n".join(["a,b,c", *rows, ""]).encode()


def zip_field(archive: bytes, name: str, value: int) -> bytes:
    """An archive with one field of its first central directory entry (and, for flags and
    method, its local header) overwritten."""
    data = bytearray(archive)
    central = data.index(b"PK\x01\x02")
    at, local, fmt = {"flags": (8, 6, "<H"), "method": (10, 8, "<H"), "size": (24, None, "<I"),
                      "offset": (42, None, "<I")}[name]
    struct.pack_into(fmt, data, central + at, value)
    if local is not None:
        struct.pack_into(fmt, data, local, value)
    return bytes(data)


def inputs(rng: random.Random, count: int, workdir: Path) -> Iterator[tuple[str, Path]]:
    """`count` inputs written under `workdir`, each as (kind, path): the path of a file, or
    of a folder (an image folder, mutated or not)."""
    pool = seeds()
    makers: dict[str, Callable[[], tuple[str, Input]]] = {
        "mutated": lambda: mutated(rng, pool),
        "header": lambda: header_edited(rng, pool),
        "random": lambda: random_input(rng),
        "odd": lambda: odd_input(rng),
    }
    for i in range(count):
        kind = ("mutated", "mutated", "mutated", "header", "random", "odd")[i % 6]
        suffix, content = makers[kind]()
        yield kind, write(workdir / f"{i:05d}{suffix}", content)


def mutated(rng: random.Random, pool: dict[str, list[Input]]) -> tuple[str, Input]:
    suffix = rng.choice(sorted(pool))
    content = rng.choice(pool[suffix])
    return suffix, mutate_folder(rng, content) if isinstance(content, dict) else mutate_bytes(rng, content)


def header_edited(rng: random.Random, pool: dict[str, list[Input]]) -> tuple[str, Input]:
    suffix = rng.choice([".csv", ".tsv", ".tab", ".npy", ".npz", ""])
    if suffix == "":
        folder = dict(rng.choice(pool[""]))
        name = rng.choice(sorted(folder))
        folder[name] = edit_ihdr(rng, folder[name])
        return suffix, folder
    if suffix == ".npz":
        members = {"a.npy": edit_header(rng, ".npy", npy_bytes(np.arange(16.0))), "b.npy": npy_bytes(np.arange(2.0))}
        return suffix, npz_bytes(members, rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    return suffix, edit_header(rng, suffix, rng.choice(pool[suffix]))


def random_input(rng: random.Random) -> tuple[str, Input]:
    """Random bytes under a suffix, bare or behind a format's magic."""
    magic = rng.choice([b"", b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"PK\x03\x04", b"\x89PNG\r\n\x1a\n",
                        b"\xff\xd8"])
    data = magic + rng.randbytes(rng.randint(0, 600))
    suffix = rng.choice([*SUFFIXES, "", ".png"])
    if suffix in ("", ".png"):
        return "", {f"c/{rng.randint(0, 9)}{rng.choice(['.png', '.jpg'])}": data}
    return suffix, data


def write(path: Path, content: Input | None) -> Path:
    """Write an input; None writes nothing (a path that does not exist)."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.mkdir()
        for name, data in content.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            if data is None:
                (path / name).mkdir(exist_ok=True)
            else:
                (path / name).write_bytes(data)
    return path


def feed(path: Path) -> str:
    """Read one input: "accepted" or "DataError"; anything else raised is a bug."""
    try:
        table = read_table(path)
    except DataError as error:
        if path.name not in str(error):
            raise AssertionError(f"a DataError that does not name the input: {error}") from None
        return "DataError"
    for name, values in table.columns.items():
        assert len(values) == table.rows, f"column '{name}' has {len(values)} rows, the table {table.rows}"
        np.asarray(values).tobytes()  # touch every byte of a memory map
    assert table.where(0) and table.where(table.rows - 1)
    return "accepted"


def keep(path: Path, crashes: Path, name: str) -> None:
    crashes.mkdir(exist_ok=True)
    if path.is_dir():
        shutil.copytree(path, crashes / name, dirs_exist_ok=True)
    elif path.exists():
        shutil.copyfile(path, crashes / f"{name}{path.suffix}")


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("-n", type=int, default=10_000)
    args.add_argument("--seed", type=int, default=0)
    options = args.parse_args()
    outcomes: Counter[str] = Counter()
    crashes = ROOT / "bench" / "crashes"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for number, (kind, path) in enumerate(inputs(random.Random(options.seed), options.n, Path(workdir))):
            try:
                outcomes[f"{kind}: {feed(path)}"] += 1
            except Exception:  # anything else is a bug
                outcomes[f"{kind}: CRASH"] += 1
                keep(path, crashes, f"crash-{options.seed}-{number}")
                print(traceback.format_exc(), file=sys.stderr)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    for outcome, count in sorted(outcomes.items()):
        print(f"{count:>7}  {outcome}")
    crashed = sum(c for o, c in outcomes.items() if o.endswith("CRASH"))
    print(f"{options.n} inputs in {seconds:.1f} s; {crashed} crashes")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
