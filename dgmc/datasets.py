"""The built-in datasets: what the language sees of them (columns, each column's size and
value domain, the preprocessing options each accepts; the checker reads only this), and
`load_split`, which turns a checked model's data statement into train and test tensors.

Nothing is ever downloaded: scikit-learn's digits ship inside scikit-learn, the Old Faithful
CSV inside this package (dgmc/data/), and mnist1d is generated from code, then cached. The
heavy imports (torch, scikit-learn, mnist1d) happen on first load, so `dgmc check` stays fast.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import ir
from .base import Span
from .errors import DgmError, Diagnostic, UserError, did_you_mean
from .families import DOMAINS, FAMILIES, NODE_DOMAINS
from .files import atomic
from .ir import FILE_DATASET
from .registry import Registry, RegistryError
from .transforms import TRANSFORMS

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .readers import Table


@dataclass(frozen=True)
class Column:
    """A data column: `size` values per row (per sequence, when `sequence`), of `domain`
    once preprocessed; `numeric` columns are real-valued until binarized."""

    size: int
    domain: str
    """A value domain (`dgmc.families.DOMAINS`): real, binary, onehot..."""
    sequence: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Dataset:
    """A dataset a spec can name: its columns (what the checker sees) and its `load`,
    which returns every row unprocessed: real columns as [N, size] float arrays (sequences
    [N, L]), a `label` column as int64 class indices [N] (its `Column.size` the number of
    classes)."""

    name: str
    columns: dict[str, Column]
    flags: tuple[str, ...]
    """Preprocessing options given by name alone, e.g. `digits(binarize)`."""
    exclusive: tuple[str, ...]
    """Flags of which at most one may be given (they rescale the same values)."""
    rows: int
    doc: str
    load: Callable[[], dict[str, np.ndarray]]


DATASETS: Registry[Dataset] = Registry("dataset")


def register_dataset(dataset: Dataset, *, replace: bool = False) -> Dataset:
    """Make `dataset` known to specs under `dataset.name` (`data NAME { ... }`)."""
    if not isinstance(dataset, Dataset):
        raise RegistryError(f"register_dataset takes a dgmc.Dataset, not {type(dataset).__name__}.")
    unknown = set(dataset.flags) - set(FLAGS)
    if unknown:
        raise RegistryError(f"dataset {dataset.name}: unknown flags {sorted(unknown)} (known: {', '.join(FLAGS)}).")
    return DATASETS.register(dataset.name, dataset, replace=replace)


FLAGS = ("binarize", "scale", "standardize")

DATA_OPTIONS = ("classes", "test_fraction")
"""Keyword options every dataset takes: `classes = [0, 1]` keeps only those labels;
`test_fraction = 0.2` sets the held-out share."""


# ---- loading -------------------------------------------------------------------------------


MNIST1D_ARGS: dict[str, object] = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60], "scale_coeff": 0.4,
    "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 2e-2, "shear_scale": 0.75,
    "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
}
"""mnist1d's generation arguments (its defaults, less the download URL), pinned here so that
the data do not drift with the package's defaults and the cache key is known without
importing mnist1d (which pulls in matplotlib and scipy: about 1 s)."""


class DataError(UserError):
    """A model whose data cannot be loaded for a reason the checker cannot see (no data
    statement, `classes` that leave too few rows, an IR built by hand that binds a column
    to a node it does not fit). The message names the node and the column."""


class DataFileError(DgmError, DataError):
    """Data that do not fit the spec, located at the binding that reads them: shown like
    a spec error (framed excerpt, caret), caught like any `DataError`."""


@dataclass(frozen=True)
class Split:
    """A model's data, split once. `train`/`test` map each bound node to float32 rows:
    [N, size], or [N, T, size] for a time-indexed node. The labels (int64 class per row)
    are there whenever the dataset has a `label` column, bound or not, for pictures and
    metrics per class."""

    train: dict[str, torch.Tensor]
    test: dict[str, torch.Tensor]
    train_labels: torch.Tensor | None
    test_labels: torch.Tensor | None

    def rows(self, part: str) -> int:
        """The number of rows of `part` ("train" or "test")."""
        if part not in ("train", "test"):
            raise ValueError(f"part is 'train' or 'test', not {part!r}")
        for tensor in (*getattr(self, part).values(), getattr(self, f"{part}_labels")):
            if tensor is not None:
                return int(tensor.shape[0])
        raise ValueError("this split holds no tensor")  # load_split never builds one


def load_split(model: ir.Model, split_seed: int = 0) -> Split:
    """Read `model`'s data (a registered dataset, or the file bound with `--data`), keep
    its `classes`, split it (a shuffle seeded by `split_seed`, `test_fraction` of the rows
    held out, at least one each side) and turn each binding's columns into its node's
    tensor: transformed with statistics of the train rows only, shaped, and checked to
    lie in the node's domain. Every problem is an error located at the binding, naming the
    file, the column and the first bad row; nothing trains on bad data."""
    import numpy as np
    import torch

    data = model.data
    if data is None:
        raise DataError(f"The model '{model.name}' has no data statement: there is nothing to load.")
    if not 0 < data.test_fraction < 1:
        raise DataError(f"test_fraction is a share of the rows, strictly between 0 and 1, not {data.test_fraction}.")
    if not isinstance(split_seed, int) or split_seed < 0:
        raise DataError(f"split_seed is an integer >= 0, not {split_seed!r}.")
    try:
        table = read_source(model)
    except DataFileError:
        raise
    except DataError as error:  # the file as a whole (empty, not a table): shown at the data statement
        _fail(model, data.span, f"The data cannot be read: {error}")
    labels = _labels(model, table)
    if not data.bindings and labels is None:
        raise DataError(f"The model '{model.name}' binds no column of {_name(table)}: there is nothing to load.")
    rows = np.arange(table.rows)
    if data.classes is not None:
        rows = rows[np.isin(labels, data.classes)]
    if len(rows) < 2:
        chosen = f" of classes {list(data.classes)}" if data.classes is not None else ""
        _fail(model, data.span, f"{_name(table)} holds {len(rows)} row(s){chosen}: a split into train and test "
                                "rows needs at least 2.")
    rows = rows[np.random.default_rng(split_seed).permutation(len(rows))]
    n_test = min(max(round(len(rows) * data.test_fraction), 1), len(rows) - 1)
    test_rows, train_rows = rows[:n_test], rows[n_test:]

    parts: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] = ({}, {})
    for name, binding in data.bindings.items():
        prepared = _bound(model, table, binding, train_rows, test_rows)
        for part, values in zip(parts, prepared, strict=True):
            part[name] = torch.from_numpy(values.astype(np.float32))
    if labels is None:
        return Split(parts[0], parts[1], None, None)
    return Split(parts[0], parts[1], torch.from_numpy(labels[train_rows]), torch.from_numpy(labels[test_rows]))


def with_data(model: ir.Model, path: str | Path) -> ir.Model:
    """`model` reading its rows from the file (or image folder) at `path` (`--data`):
    only a spec whose data statement is `data file { ... }` takes one, so that a spec
    never silently trains on other data than it names. The file's content hash is kept
    with it: checkpoints and run directories know their data again."""
    from .readers import file_digest

    if model.data is None or model.data.dataset != ir.FILE_DATASET:
        named = f"the dataset '{model.data.dataset}'" if model.data else "no data"
        raise DataError(f"--data gives the file of a spec whose data statement is `data file {{ ... }}`; "
                        f"'{model.name}' reads {named}.")
    source = Path(path)
    data = model.data.model_copy(update={"source": str(source), "digest": file_digest(source)})
    return model.model_copy(update={"data": data})


def has_data(model: ir.Model) -> bool:
    """Whether the model's rows can be read: a registered dataset, or a bound file."""
    return model.data is not None and (model.data.dataset != ir.FILE_DATASET or model.data.source is not None)


def read_source(model: ir.Model) -> Table:
    """The rows of the model's data: the `--data` file of a `data file` spec, else the
    registered dataset's, as a `Table` of named columns."""
    import numpy as np

    from .readers import Table, read_table

    data = model.data
    if data.dataset == ir.FILE_DATASET:
        if data.source is None:
            raise DataError(f"'{model.name}' reads its data from a file (`data file`): give it with --data PATH.")
        return read_table(data.source)
    dataset = DATASETS.get(data.dataset)
    if dataset is None:
        raise DataError(f"Unknown dataset '{data.dataset}' (known: {', '.join(DATASETS)}).")
    columns = {k: np.asarray(v) for k, v in dataset.load().items()}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise DataError(f"The loader of {dataset.name} gave columns of different lengths {sorted(lengths)}.")
    return Table(path=Path(dataset.name), format="dataset", columns=columns, rows=lengths.pop() if lengths else 0)


def _name(table: Table) -> str:
    return f"'{table.path}'" if table.format != "dataset" else str(table.path)


def _labels(model: ir.Model, table: Table) -> np.ndarray | None:
    """The class of each row (int64), from a `label` column when there is one; `classes`
    needs it, and pictures and metrics use it per class."""
    import numpy as np

    if "label" not in table.columns:
        if model.data.classes is not None:
            raise DataError(f"{_name(table)} has no label column, so `classes` cannot choose rows.")
        return None
    values = np.asarray(table.columns["label"]).reshape(table.rows, -1)
    whole = values.shape[1] == 1 and np.isfinite(values).all() and (values == np.round(values)).all()
    if not whole or (values < 0).any():
        if model.data.classes is not None:
            raise DataError(f"The label column of {_name(table)} must hold class numbers 0, 1, ... for `classes`.")
        return None
    return values[:, 0].astype(np.int64)


def _bound(model: ir.Model, table: Table, binding: ir.Binding, train_rows: np.ndarray,
           test_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One binding's train and test values, [N, size] or [N, T, size]."""
    import numpy as np

    node = model.node(binding.node) if model.has(binding.node) else None
    if node is None or node.kind not in ("observed", "input"):
        what = f"is {node.kind}" if node else "is not in the model"
        raise DataError(f"The data binding of '{binding.node}' {what}: only observed and input nodes take data.")
    values = np.concatenate([_column(model, table, binding, c) for c in binding.columns], axis=1)
    transform = _transform_of(model, table, binding)
    train, test = values[train_rows], values[test_rows]
    if transform is not None:
        integers = TRANSFORMS[transform].integers
        if integers:
            _check(model, table, binding, values, np.isclose(values, np.round(values)) & (values >= 0),
                   f"{transform} needs class numbers (0, 1, 2 and so on)")
        train, test = TRANSFORMS[transform].apply(train, test, dict(_args_of(model, table, binding)))
    shape = _shape(model, table, binding, node, train.shape[1])
    train, test = train.reshape(len(train), *shape), test.reshape(len(test), *shape)
    domain = FAMILIES[node.type].domain if node.kind == "observed" else NODE_DOMAINS[node.type]
    everything = np.empty((table.rows, *shape))
    everything[train_rows], everything[test_rows] = train, test
    kept = np.zeros(table.rows, dtype=bool)
    kept[train_rows] = kept[test_rows] = True
    inside = DOMAINS[domain].contains(everything)
    inside = inside.reshape(table.rows, -1).all(axis=1) | ~kept
    _check(model, table, binding, everything, inside, f"{node.type} needs values that are {DOMAINS[domain].doc}",
           per_row=True)
    return train, test


def _column(model: ir.Model, table: Table, binding: ir.Binding, name: str) -> np.ndarray:
    """One column as float64 [N, width], finite."""
    import numpy as np

    if name not in table.columns:
        known = ", ".join(table.columns)
        _fail(model, binding.span, f"{_name(table)} has no column '{name}' (its columns: {known})."
                                   f"{did_you_mean(name, table.columns)}")
    values = np.asarray(table.columns[name], dtype=np.float64).reshape(table.rows, -1)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row = int(np.argmax(~finite))
        _fail(model, binding.span, f"In {_name(table)}, {table.where(row)}, column '{name}' holds a value that is "
                                   f"not finite (NaN or Inf){_how_many(int((~finite).sum()))}.")
    return values


def _transform_of(model: ir.Model, table: Table, binding: ir.Binding) -> str | None:
    """The binding's transform; a registered dataset's one-hot columns are one-hot
    encoded, and its real columns take the dataset's option (`digits(binarize)`)."""
    if binding.transform is not None:
        return binding.transform
    dataset = DATASETS.get(model.data.dataset)
    columns = [dataset.columns.get(c) for c in binding.columns] if dataset else []
    if columns and all(c is not None and c.domain == "onehot" for c in columns):
        return "onehot"
    if any(c is not None and c.domain != "real" for c in columns):
        return None
    return next((f for f in model.data.flags if f in TRANSFORMS), None)


def _args_of(model: ir.Model, table: Table, binding: ir.Binding) -> dict[str, float]:
    """The binding's arguments; a registered one-hot column's class count by default."""
    args = dict(binding.args)
    dataset = DATASETS.get(model.data.dataset)
    column = dataset.columns.get(binding.columns[0]) if dataset else None
    if _transform_of(model, table, binding) == "onehot" and column is not None and column.domain == "onehot":
        args.setdefault("classes", column.size)
    return args


def _shape(model: ir.Model, table: Table, binding: ir.Binding, node: ir.Node, width: int) -> tuple[int, ...]:
    """The shape of one row of the node: (size,), or (T, size) for a time-indexed node."""
    steps = model.time.steps if node.timed and model.time else 1
    if width == steps * node.size:
        return (steps, node.size) if node.timed else (node.size,)
    per = f"{node.size} per step over {steps} steps ({steps * node.size})" if node.timed else str(node.size)
    _fail(model, binding.span, f"'{node.name}' takes {per} values per row, but {_describe(table, binding)} "
                               f"give {width}.")


def _describe(table: Table, binding: ir.Binding) -> str:
    what = f"column '{binding.columns[0]}'" if len(binding.columns) == 1 else \
        f"columns [{', '.join(binding.columns)}]"
    return f"{what} of {_name(table)}" + (f" after {binding.transform}" if binding.transform else "")


def _check(model: ir.Model, table: Table, binding: ir.Binding, values: np.ndarray, inside: np.ndarray,
           needs: str, per_row: bool = False) -> None:
    """A located error at the first row whose values are not `inside`."""
    import numpy as np

    rows_ok = inside if per_row else inside.reshape(len(values), -1).all(axis=1)
    if rows_ok.all():
        return
    row = int(np.argmax(~rows_ok))
    flat = values.reshape(len(values), -1)[row]
    shown = ", ".join(f"{v:g}" for v in flat[:4]) + (", ..." if flat.size > 4 else "")
    columns = f"column '{binding.columns[0]}' holds" if len(binding.columns) == 1 else \
        f"columns [{', '.join(binding.columns)}] hold"
    _fail(model, binding.span, f"In {_name(table)}, {table.where(row)}, {columns} [{shown}]: {needs}"
                               f"{_how_many(int((~rows_ok).sum()))}.")


def _how_many(rows: int) -> str:
    return "" if rows == 1 else f" ({rows} rows are like this; the first is shown)"


def _fail(model: ir.Model, span: Span, message: str) -> NoReturn:
    """Raise the error at its place in the spec (the binding, or the data statement):
    framed like every spec error when the model knows its source text, else naming the line."""
    source = model.source_text
    if source is not None:
        raise DataFileError([Diagnostic(severity="error", phase="data", span=span, message=message)], *source)
    raise DataError(f"{message} (line {span.line} of the spec)")


def _digits() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits, which ship inside scikit-learn: no download."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return {"pixels": np.asarray(bunch.data, dtype=np.float64), "label": np.asarray(bunch.target, dtype=np.int64)}


def _old_faithful() -> dict[str, np.ndarray]:
    import numpy as np

    text = (resources.files("dgmc") / "data" / "old_faithful.csv").read_text(encoding="utf-8")
    header, *lines = [line for line in csv.reader(io.StringIO(text)) if line]
    table = np.array(lines, dtype=np.float64)
    return {column: table[:, [i]] for i, column in enumerate(header)}


def cache_dir() -> Path:
    """Where generated data are kept: `$DGMC_CACHE`, else ~/.cache/dgmc."""
    return Path(os.environ.get("DGMC_CACHE") or Path.home() / ".cache" / "dgmc")


def _mnist1d() -> dict[str, np.ndarray]:
    """mnist1d's 5000 rows (its train part, then its test part), generated with
    `make_dataset` (never `get_dataset`, which downloads) and cached as .npz: generating
    costs about 2 s, reading the cache milliseconds. The file name hashes the generation
    arguments and mnist1d's version, so a change of either regenerates."""
    import numpy as np

    key = json.dumps({"mnist1d": metadata.version("mnist1d"), **MNIST1D_ARGS}, sort_keys=True)
    path = cache_dir() / f"mnist1d-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    with contextlib.suppress(OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile), np.load(path) as cached:
        return {"signal": cached["signal"], "label": cached["label"]}
    arrays = _generate_mnist1d()
    with contextlib.suppress(OSError), atomic(path) as temporary, temporary.open("wb") as file:
        np.savez(file, **arrays)  # an unwritable cache costs time, not the run
    return arrays


def _generate_mnist1d() -> dict[str, np.ndarray]:
    """Run mnist1d's generator. It reseeds the global `random` and `numpy.random` states,
    so they are saved and restored (loading data must not change a caller's random
    stream), and anything it prints is swallowed."""
    import numpy as np
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    vars(args).update(MNIST1D_ARGS)
    states = random.getstate(), np.random.get_state()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            made = make_dataset(args)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    return {"signal": np.concatenate([made["x"], made["x_test"]]).astype(np.float64),
            "label": np.concatenate([made["y"], made["y_test"]]).astype(np.int64)}


for _dataset in (
    Dataset(FILE_DATASET, {}, flags=FLAGS, exclusive=FLAGS, rows=0, load=dict,
            doc="your own data file or image folder, given with --data PATH (CSV/TSV, .npy/.npz, images)"),
    Dataset("digits", {"pixels": Column(64, "real", doc="8x8 grey levels 0..16"),
                       "label": Column(10, "onehot", doc="the digit, one-hot")},
            flags=FLAGS, exclusive=FLAGS, rows=1797, doc="scikit-learn's load_digits", load=_digits,
            ),  # binarize keeps pixel > 8 (the middle of 0..16), the usual threshold for a Bernoulli model
    Dataset("old_faithful", {"eruptions": Column(1, "real", doc="eruption time, minutes"),
                             "waiting": Column(1, "real", doc="waiting time to the next eruption, minutes")},
            flags=("standardize",), exclusive=(), rows=272,
            doc="Old Faithful geyser, shipped in dgmc/data/old_faithful.csv", load=_old_faithful),
    Dataset("mnist1d", {"signal": Column(40, "real", sequence=True, doc="a 40-point 1-d signal"),
                        "label": Column(10, "onehot", doc="the class, one-hot")},
            flags=("standardize",), exclusive=(), rows=5000,
            doc="mnist1d sequences generated offline with make_dataset", load=_mnist1d),
):
    DATASETS.register(_dataset.name, _dataset, origin="dgmc")
