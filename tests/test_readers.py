"""dgmc/datasets/readers/: each format read into named columns (values, shapes, dtypes, `where`),
NumPy files memory-mapped, and every bad input a DataError that names the file and, where
there is one, the column and line."""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy
from PIL import Image

from dgmc.cli import main
from dgmc.core.registry import RegistryError
from dgmc.datasets import DataError
from dgmc.datasets.readers import READERS, Reader, Table, file_digest, read_table

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def npy_bytes(header: dict, data: bytes = b"") -> bytes:
    """A .npy file with a hand-written header, as a corrupt or hostile one may be."""
    stream = io.BytesIO()
    npy.write_array_header_1_0(stream, header)
    return stream.getvalue() + data


def image(path: Path, mode: str = "RGB", size: tuple[int, int] = (4, 3), colour: int | tuple = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def mapped(values: np.ndarray) -> bool:
    return isinstance(values, np.memmap) or isinstance(values.base, np.memmap)


# CSV and TSV


def test_csv_columns_values_and_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", b"\xef\xbb\xbfx, y\r\n\r\n1,2.5\r\n-3,nan\r\n\r\n\r\n4e2,inf\r\n")
    table = read_table(path)
    assert (table.format, table.rows, list(table.columns)) == ("csv", 3, ["x", "y"])
    assert table.columns["x"].dtype == np.float64 and table.columns["x"].shape == (3,)
    np.testing.assert_array_equal(table.column("x"), [1, -3, 400])
    np.testing.assert_array_equal(table.column("y"), [2.5, np.nan, np.inf])
    assert [table.where(row) for row in range(3)] == ["line 3", "line 4", "line 7"]


def test_tsv_and_quoted_multiline_rows(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.tab", '"a"\t"b"\n"1\n"\t2\n3\t4\n'))
    assert table.format == "tsv" and table.rows == 2
    np.testing.assert_array_equal(table.column("a"), [1, 3])
    assert [table.where(0), table.where(1)] == ["line 2", "line 4"]  # a row is found where it starts


@pytest.mark.parametrize(("text", "match"), [
    ("", r"d\.csv: the file is empty"),
    ("\n \n\n", r"d\.csv: the file is empty"),
    ("a,b\n\n", r"d\.csv: there is a header row \(line 1\) but no rows"),
    ("a,,b\n1,2,3\n", r"d\.csv, line 1: column 2 of the header has no name"),
    ("\na,b,a\n1,2,3\n", r"d\.csv, line 2: the header names the column 'a' more than once"),
    ("a,b\n1,2\n\n3\n", r"d\.csv, line 4: 1 cell\(s\), but the header names 2 column\(s\)"),
    ("a,b\n1,2\n3,4,5\n", r"d\.csv, line 3: 3 cell\(s\), but the header names 2"),
    ("a,b\n1,2\n3,seven\n", r"d\.csv, line 3, column 'b': 'seven' is not a number"),
    ("a\n" + "9" * 200 + "x\n", r"column 'a': '9{37}\.\.\.' is not a number"),
    ("a,b\n1,2\n3\r4,5\n", r"d\.csv, line 3: a carriage return \(\\r\) that does not end a line"),
    ("a\n" + "1" * 200_000 + "\n", r"d\.csv, line 2: field larger than field limit"),
])
def test_csv_errors_name_file_line_and_column(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_table(write(tmp_path / "d.csv", text))


def test_csv_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"d\.csv, line 3: not UTF-8 text \(byte b'\\xe9' at column 3\)"):
        read_table(write(tmp_path / "d.csv", b"a,b\n1,2\n3,\xe9\n"))


# .npy


def test_npy_plain_array_is_one_memory_mapped_column_named_after_the_file(tmp_path: Path) -> None:
    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "pixels.npy", values)
    table = read_table(tmp_path / "pixels.npy")
    assert (table.format, table.rows, list(table.columns)) == ("npy", 4, ["pixels"])
    column = table.column("pixels")
    assert mapped(column) and column.dtype == np.float32
    np.testing.assert_array_equal(column, values)
    assert table.where(2) == "row 2"


def test_npy_fortran_order_and_scalar_rows(tmp_path: Path) -> None:
    values = np.asfortranarray(np.arange(6.0).reshape(3, 2))
    np.save(tmp_path / "f.npy", values)
    np.testing.assert_array_equal(read_table(tmp_path / "f.npy").column("f"), values)
    np.save(tmp_path / "flags.npy", np.array([True, False]))
    column = read_table(tmp_path / "flags.npy").column("flags")
    assert column.shape == (2,) and column.dtype == np.bool_


def test_npy_structured_array_gives_one_column_per_field(tmp_path: Path) -> None:
    values = np.zeros(3, dtype=[("age", "<f4"), ("scores", "<i2", (2,))])
    values["age"], values["scores"] = [1, 2, 3], [[1, 2], [3, 4], [5, 6]]
    np.save(tmp_path / "people.npy", values)
    table = read_table(tmp_path / "people.npy")
    assert list(table.columns) == ["age", "scores"]
    assert table.column("scores").shape == (3, 2) and mapped(table.column("scores"))
    np.testing.assert_array_equal(table.column("age"), [1, 2, 3])


def test_npy_structured_field_names_outside_latin1(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="format 3.0"):
        np.save(tmp_path / "t.npy", np.ones(2, dtype=[("温度", "<f8")]))
    assert list(read_table(tmp_path / "t.npy").columns) == ["温度"]


@pytest.mark.parametrize(("data", "match"), [
    (npy_bytes({"descr": "<f8", "fortran_order": False, "shape": ()}, bytes(8)), r"x\.npy: a single value \(a 0-d"),
    (npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (0, 3)}), r"x\.npy: no rows"),
    (npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (3, -1)}), r"x\.npy: .* negative length"),
    (npy_bytes({"descr": "|O", "fortran_order": False, "shape": (2,)}, bytes(16)),
     r"x\.npy: the array holds object values, not numbers .* never loads pickled"),
    (npy_bytes({"descr": "<U3", "fortran_order": False, "shape": (2,)}, bytes(24)), r"holds <U3 values, not numbers"),
    (npy_bytes({"descr": [("a", "<f8"), ("b", "<c16")], "fortran_order": False, "shape": (1,)}, bytes(24)),
     r"the field 'b' holds complex128 values"),
    (npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (10**18, 10**18)}, bytes(64)),
     r"x\.npy: the header declares shape \(1000000000000000000, 1000000000000000000\) .* truncated or corrupt"),
    (npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (4,)}, bytes(31)),
     r"declares shape \(4,\) of float64 \(32 bytes\) but only 31 bytes follow"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'", r"x\.npy: not a valid \.npy array"),
    (b"\x93NUMPY\x07\x00", r"x\.npy: NumPy format version 7\.0"),
    (b"PK\x03\x04 a zip, or anything else", r"x\.npy: not a valid \.npy array \(the magic string"),
    (b"", r"x\.npy: not a valid \.npy array"),
])
def test_npy_errors(tmp_path: Path, data: bytes, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_table(write(tmp_path / "x.npy", data))


# .npz


def test_npz_stored_members_are_memory_mapped(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 1]),
             f=np.asfortranarray(np.arange(6).reshape(3, 2)))
    table = read_table(tmp_path / "d.npz")
    assert (table.format, table.rows, sorted(table.columns)) == ("npz", 3, ["f", "x", "y"])
    assert all(mapped(column) for column in table.columns.values())
    np.testing.assert_array_equal(table.column("x"), np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(table.column("f"), np.arange(6).reshape(3, 2))
    assert table.column("y").dtype == np.int64 and table.where(1) == "row 1"


def test_npz_compressed_members_are_loaded(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "d.npz", x=np.arange(4.0), y=np.ones((4, 2, 2), dtype=np.uint8))
    table = read_table(tmp_path / "d.npz")
    np.testing.assert_array_equal(table.column("x"), np.arange(4.0))
    assert table.column("y").shape == (4, 2, 2) and not mapped(table.column("y"))


def test_npz_member_with_a_long_local_extra_field(tmp_path: Path) -> None:
    """The data start after the local header's own extra field, which the central directory
    need not repeat."""
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("x.npy")
        info.extra = b"\xfe\xca\x08\x00" + bytes(8)  # an unknown block of 8 bytes
        stream = io.BytesIO()
        np.save(stream, np.arange(5.0))
        archive.writestr(info, stream.getvalue())
    np.testing.assert_array_equal(read_table(path).column("x"), np.arange(5.0))


def npz_with(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def saved(values: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, values, allow_pickle=True)
    return stream.getvalue()


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize(("members", "match"), [
    ({}, r"d\.npz: the archive holds no arrays"),
    ({"a.npy": saved(np.arange(3)), "b.npy": saved(np.ones((4, 2)))},
     r"d\.npz: the array 'b' has 4 rows but 'a' has 3"),
    ({"a.npy": saved(np.array([1, None]))}, r"d\.npz, array 'a\.npy': the array holds object values"),
    ({"a.npy": saved(np.zeros(2, dtype=[("f", "<f8")]))}, r"array 'a\.npy': the array holds .* not numbers"),
    ({"a.npy": saved(np.array(1.0))}, r"array 'a\.npy': a single value"),
    ({"a.npy": saved(np.arange(3.0))[:-1]}, r"array 'a\.npy': the header declares shape \(3,\) .* but only 23 bytes"),
    ({"a.npy": b"not an array"}, r"d\.npz, array 'a\.npy': not a valid \.npy array"),
    ({"a.npy": saved(np.arange(3)), "a": saved(np.arange(3))}, r"d\.npz: the archive holds the array 'a' more than"),
])
def test_npz_errors(tmp_path: Path, members: dict[str, bytes], match: str, compress: int) -> None:
    with pytest.raises(DataError, match=match):
        read_table(npz_with(tmp_path / "d.npz", members, compress))


def test_npz_that_is_not_a_zip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"d\.npz: not a valid \.npz archive \(File is not a zip file\)"):
        read_table(write(tmp_path / "d.npz", b"\x93NUMPY plain npy bytes"))


def test_npz_with_a_bad_crc(tmp_path: Path) -> None:
    path = npz_with(tmp_path / "d.npz", {"a.npy": saved(np.arange(100.0))}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    data[14] ^= 0xFF  # the local header's CRC
    data[data.rindex(b"PK\x01\x02") + 16] ^= 0xFF  # and the central directory's
    with pytest.raises(DataError, match=r"d\.npz: not a valid \.npz archive \(Bad CRC-32"):
        read_table(write(path, bytes(data)))


# Image folders


def test_image_folder_colour_images(tmp_path: Path) -> None:
    image(tmp_path / "cats" / "b.png", colour=(10, 20, 30))
    image(tmp_path / "cats" / "a.PNG", "P")
    image(tmp_path / "dogs" / "c.jpeg", "CMYK", colour=(0, 0, 0, 55))
    image(tmp_path / "dogs" / "d.png", "RGBA", colour=(1, 2, 3, 0))
    write(tmp_path / "dogs" / "notes.txt", "not an image")
    write(tmp_path / "README", "ignored")
    (tmp_path / ".hidden").mkdir()
    table = read_table(tmp_path)
    assert (table.format, table.rows, table.classes) == ("images", 4, ("cats", "dogs"))
    assert table.column("image").shape == (4, 3, 3, 4) and table.column("image").dtype == np.uint8
    np.testing.assert_array_equal(table.column("label"), [0, 0, 1, 1])
    assert table.column("label").dtype == np.int64
    np.testing.assert_array_equal(table.column("image")[1, :, 0, 0], [10, 20, 30])
    assert np.abs(table.column("image")[2, :, 1, 1].astype(int) - 200).max() <= 2  # JPEG is lossy
    np.testing.assert_array_equal(table.column("image")[3, :, 2, 3], [1, 2, 3])  # alpha dropped, not composited
    assert [table.where(row) for row in range(4)] == ["cats/a.PNG", "cats/b.png", "dogs/c.jpeg", "dogs/d.png"]


def test_image_folder_grey_images(tmp_path: Path) -> None:
    image(tmp_path / "0" / "a.png", "L", (2, 5), 7)
    image(tmp_path / "1" / "b.png", "1", (2, 5), 1)
    image(tmp_path / "1" / "c.png", "LA", (2, 5), (9, 0))
    table = read_table(tmp_path)
    assert table.column("image").shape == (3, 1, 5, 2)
    np.testing.assert_array_equal(table.column("image")[:, 0, 0, 0], [7, 255, 9])


def png(mode: str = "RGB", size: tuple[int, int] = (4, 3)) -> bytes:
    stream = io.BytesIO()
    Image.new(mode, size).save(stream, "PNG")
    return stream.getvalue()


def tall_png() -> bytes:
    """A 4x3 PNG whose header, checksum and all, claims 4x5,000,000: Pillow would decode it,
    filling the missing rows with zeros."""
    data = png()
    ihdr = data[16:20] + struct.pack(">I", 5_000_000) + data[24:29]
    return data[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + data[33:]


@pytest.mark.parametrize(("files", "match"), [
    ({"a.png": png()}, r"images is a folder, but not an image folder: it has no subfolders"),
    ({"a/notes.txt": b"", "a/x.gif": png()}, r"images: the class folder 'a' holds no PNG or JPEG images"),
    ({"a/x.png": b""}, r"images: the image 'a/x\.png' cannot be decoded"),
    ({"a/x.png": png()[:40]}, r"images: the image 'a/x\.png' cannot be decoded"),
    ({"a/x.png": b"GIF89a" + png()[6:]}, r"images: the image 'a/x\.png' cannot be decoded"),
    ({"a/1.png": png(size=(4, 3)), "b/2.png": png(size=(5, 3))},
     r"the image 'b/2\.png' is 5x3 with 3 channels, but the first image, 'a/1\.png', is 4x3 with 3 channels"),
    ({"a/1.png": png("L"), "a/2.png": png("RGB")},
     r"the image 'a/2\.png' is 4x3 with 3 channels, but the first image, 'a/1\.png', is 4x3 with 1 channel;"),
    ({"a/1.png": png("I;16")}, r"the image 'a/1\.png' has I;16 pixels \(16 or 32 bits\)"),
    ({"a/1.png": tall_png()}, r"the image 'a/1\.png' declares 4x5000000 with 3 channels, more pixels than its"),
])
def test_image_folder_errors(tmp_path: Path, files: dict[str, bytes], match: str) -> None:
    for name, data in files.items():
        (tmp_path / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        write(tmp_path / "images" / name, data)
    with pytest.raises(DataError, match=match):
        read_table(tmp_path / "images")


# Parquet


def test_parquet_numbers_lists_and_nulls(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({
        "x": pa.array([1.5, 2.5, 3.5]), "k": pa.array([0, 1, 2], pa.int64()),
        "v": pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.float32(), 2)),
        "w": pa.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), "gap": pa.array([1.0, None, 3.0]),
    })
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=2)
    read = read_table(tmp_path / "d.parquet")
    assert (read.format, read.rows, list(read.columns)) == ("parquet", 3, ["x", "k", "v", "w", "gap"])
    assert read.columns["k"].tolist() == [0, 1, 2]
    assert read.columns["v"].shape == (3, 2) and read.columns["v"][2].tolist() == [5, 6]
    assert read.columns["w"].shape == (3, 3)
    assert np.isnan(read.columns["gap"][1]) and read.where(1) == "row 1"


@pytest.mark.parametrize(("column", "match"), [
    ("words", r"the column 's' holds string; dgmc reads numbers"),
    ("ragged", r"row 1, column 's': a list of 1 values, but row 0 has 2"),
    ("null list", r"row 1, column 's': the list is missing"),
    ("text lists", r"the column 's' holds lists of string"),
])
def test_parquet_errors(tmp_path: Path, column: str, match: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    values = {"words": ["a", "b"], "ragged": [[1, 2], [3]], "null list": [[1, 2], None],
              "text lists": [["a"], ["b"]]}[column]
    pq.write_table(pa.table({"s": pa.array(values)}), tmp_path / "d.parquet")
    with pytest.raises(DataError, match=match):
        read_table(tmp_path / "d.parquet")


def test_parquet_that_is_not_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    write(tmp_path / "d.parquet", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"d\.parquet: not a readable Parquet file"):
        read_table(tmp_path / "d.parquet")


# Paths, columns, digests


@pytest.mark.parametrize(("name", "match"), [
    ("missing.csv", r"missing\.csv: no such file or folder"),
    ("data.json", r"data\.json: dgmc reads CSV \(\.csv\), TSV .* not '\.json' files"),
    ("data", r"data: a file without a suffix; dgmc reads CSV"),
])
def test_paths_that_are_not_data_files(tmp_path: Path, name: str, match: str) -> None:
    if name != "missing.csv":
        write(tmp_path / name, "{}")
    with pytest.raises(DataError, match=match):
        read_table(tmp_path / name)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "d.csv", "a\n1\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(DataError, match=r"d\.csv: cannot read it \(Permission denied\)"):
        read_table(path)
    with pytest.raises(DataError, match=r"d\.csv: cannot read it \(Permission denied\)"):
        file_digest(path)


def test_missing_column_lists_the_columns_and_suggests_one(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", "height,weight\n1,2\n"))
    with pytest.raises(DataError, match=r"d\.csv has no column 'wieght' \(its columns: height, weight\)\. "
                                        r"Did you mean 'weight'\?"):
        table.column("wieght")


def test_file_digest_of_files_and_folders(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a\n1\n")
    assert file_digest(path) == hashlib.sha256(b"a\n1\n").hexdigest()[:16]
    before = file_digest(path)
    write(path, "a\n2\n")
    assert file_digest(path) != before
    image(tmp_path / "images" / "cats" / "1.png")
    folder = file_digest(tmp_path / "images")
    (tmp_path / "images" / "dogs").mkdir()
    (tmp_path / "images" / "cats" / "1.png").rename(tmp_path / "images" / "dogs" / "1.png")
    assert file_digest(tmp_path / "images") != folder  # same bytes, another class
    with pytest.raises(DataError, match="cannot read it"):
        file_digest(tmp_path / "missing.csv")


# Readers registered by a plugin


def _read_json(path: Path) -> Table:
    """A JSON object of equal-length number lists, one per column (a plugin's reader)."""
    columns = {name: np.asarray(values, dtype=np.float64) for name, values in json.loads(path.read_text()).items()}
    return Table(path, "json", columns, len(next(iter(columns.values()))))


@pytest.fixture
def json_reader():
    """A reader for .json files registered as a plugin would, for one test, removed after."""
    READERS.register("json", Reader(_read_json, "JSON", (".json",)), origin="python")
    yield
    READERS.unregister("json")


def test_a_registered_reader_makes_its_suffix_a_data_file(json_reader, tmp_path: Path, capsys,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    faithful = read_table(ROOT / "examples" / "data" / "faithful.csv")
    path = write(tmp_path / "faithful.JSON", json.dumps({k: v.tolist() for k, v in faithful.columns.items()}))
    table = read_table(path)
    assert table.format == "json" and table.rows == faithful.rows
    assert all(np.array_equal(table.columns[k], v) for k, v in faithful.columns.items())
    with pytest.raises(DataError, match=r"dgmc reads CSV .*, a folder of images with one subfolder per class or "
                                        r"JSON \(\.json\), not '\.yaml' files"):
        read_table(write(tmp_path / "d.yaml", "{}"))
    monkeypatch.chdir(ROOT)  # as a dataset file: `--data` binds its columns to the spec's nodes
    assert main(["check", "examples/faithful_csv.dgm", "--data", str(path)]) == 0
    assert "218 train and 54 test rows" in capsys.readouterr().out
    from dgmc.api import listing

    assert "readers:\n  csv      dgmc\n" in listing() and "  json     python\n" in listing()


def test_a_folder_goes_to_the_folder_reader_whatever_its_name(tmp_path: Path) -> None:
    image(tmp_path / "set.csv" / "a" / "0.png")
    assert read_table(tmp_path / "set.csv").format == "images"


def test_reader_suffixes_are_lower_case_with_their_dot() -> None:
    with pytest.raises(RegistryError, match=r"suffixes are lower case and start with a dot, not \['json'\]"):
        Reader(_read_json, "JSON", ("json",))


def test_an_empty_cell_is_a_missing_value(tmp_path: Path) -> None:
    """Read as NaN; the loader accepts it only in a column a node may miss (tests/test_missing.py)."""
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,\n2,3\n")
    table = read_table(path)
    assert table.columns["a"].tolist() == [1.0, 2.0]
    assert math.isnan(table.columns["b"][0]) and table.columns["b"][1] == 3.0
