"""From a checked model's data statement to train and test tensors: read the file or
the registered dataset, split it, transform and shape each binding, and check every
value against its node before any step, with errors located at the binding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from .. import ir
from ..core.base import Span
from ..core.errors import Diagnostic, did_you_mean, words
from ..families import DOMAINS, FAMILIES, NODE_DOMAINS
from .transforms import TRANSFORMS, fix_for

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .readers import Table

from ..core.errors import DataError, DataFileError
from .base import DATASETS, Split


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
        prepared = _bound(model, table, binding, train_rows, test_rows, split_seed)
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
        raise DataError(f"Only a spec whose data statement is `data file {{ ... }}` takes a data file; "
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
            raise DataError(f"'{model.name}' reads its data from a file (`data file`): {words('data')}.")
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
           test_rows: np.ndarray, split_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One binding's train and test values, [N, size] or [N, T, size]."""
    import numpy as np

    node = model.node(binding.node) if model.has(binding.node) else None
    if node is None or not (node.kind in ("observed", "input") or model.may_miss(node.name)):
        what = f"is {node.kind}" if node else "is not in the model"
        raise DataError(f"The data binding of '{binding.node}' {what}: only observed and input nodes take data "
                        "(and latents with a guide).")
    values = np.concatenate([_column(model, table, binding, c) for c in binding.columns], axis=1)
    transform = _transform_of(model, table, binding)
    if model.data.labelled < 1 and _is_label(model, binding):  # `labelled`: the training rows that lose theirs
        values[_hidden(train_rows, model.data.labelled, split_seed)] = np.nan
    missing = np.isnan(values).any(axis=1)  # a row missing a value misses the node's (see `_column`)
    values[missing] = np.nan
    train, test = values[train_rows], values[test_rows]
    if transform is not None:
        integers = TRANSFORMS[transform].integers
        if integers:
            whole = np.isclose(values, np.round(values)) & (values >= 0)
            _check(model, table, binding, values, whole | missing[:, None],
                   f"{transform} needs class numbers (0, 1, 2 and so on)")
        apply, args = TRANSFORMS[transform].apply, dict(_args_of(model, table, binding))
        train, test = apply(train, test, args) if TRANSFORMS[transform].reads_missing else \
            _present_only(apply, train, test, args)
    shape = _shape(model, table, binding, node, train.shape[1])
    train, test = train.reshape(len(train), *shape), test.reshape(len(test), *shape)
    domain = FAMILIES[node.type].domain if node.family is not None else NODE_DOMAINS[node.type]
    everything = np.empty((table.rows, *shape))
    everything[train_rows], everything[test_rows] = train, test
    kept = np.zeros(table.rows, dtype=bool)
    kept[train_rows] = kept[test_rows] = True
    inside = DOMAINS[domain].contains(everything)
    inside = inside.reshape(table.rows, -1).all(axis=1) | ~kept | missing
    fix = fix_for(binding.node, binding.columns, domain) if transform is None or \
        TRANSFORMS[transform].domain != domain else ""
    _check(model, table, binding, everything, inside, f"{node.type} needs values that are {DOMAINS[domain].doc}",
           per_row=True, fix=fix)
    return train, test


def _is_label(model: ir.Model, binding: ir.Binding) -> bool:
    """Whether the binding reads a registered dataset's labels (its one-hot columns)."""
    dataset = DATASETS.get(model.data.dataset)
    return dataset is not None and any(dataset.columns.get(c) is not None and dataset.columns[c].domain == "onehot"
                                       for c in binding.columns)


def _hidden(train_rows: np.ndarray, labelled: float, split_seed: int) -> np.ndarray:
    """The training rows that lose their labels: all but a `labelled` share (at least
    one), chosen by a shuffle seeded by the split's seed, the same for every binding."""
    import numpy as np

    kept = max(1, round(len(train_rows) * labelled))
    return train_rows[np.random.default_rng(split_seed + 1).permutation(len(train_rows))[kept:]]


def _why_not_missing(model: ir.Model, name: str) -> str:
    """Why the node cannot miss a value (`ir.Model.may_miss`)."""
    node = model.node(name) if model.has(name) else None
    if node is None or model.may_miss(name):
        return ""
    if node.kind == "latent":
        return f": '{name}' has no guide to infer it where the data miss it"
    if node.kind == "input":
        return f": the input '{name}' is given in every row"
    return f": other nodes read '{name}', so every row needs its value"


def _present_only(apply, train: np.ndarray, test: np.ndarray, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """A transform of the rows that hold values (its statistics from those alone); the
    missing rows stay missing, as wide as the result."""
    import numpy as np

    have_train, have_test = ~np.isnan(train).any(axis=1), ~np.isnan(test).any(axis=1)
    done_train, done_test = apply(train[have_train], test[have_test], args)
    out = [np.full((len(rows), done.shape[1]), np.nan) for rows, done in ((train, done_train), (test, done_test))]
    out[0][have_train], out[1][have_test] = done_train, done_test
    return out[0], out[1]


def _column(model: ir.Model, table: Table, binding: ir.Binding, name: str) -> np.ndarray:
    """One column as float64 [N, width], finite (or NaN, a missing value, in a column
    bound to a node that may miss values: `ir.Model.may_miss`)."""
    import numpy as np

    if name not in table.columns:
        known = ", ".join(table.columns)
        _fail(model, binding.span, f"{_name(table)} has no column '{name}' (its columns: {known})."
                                   f"{did_you_mean(name, table.columns)}")
    values = np.asarray(table.columns[name], dtype=np.float64).reshape(table.rows, -1)
    finite = np.isfinite(values).all(axis=1)
    if model.may_miss(binding.node) or (binding.transform and TRANSFORMS[binding.transform].reads_missing):
        finite |= np.isnan(values).all(axis=1)
    if not finite.all():
        row = int(np.argmax(~finite))
        _fail(model, binding.span, f"In {_name(table)}, {table.where(row)}, column '{name}' holds a value that is "
                                   f"missing or not finite (an empty cell, NaN or Inf){_how_many(int((~finite).sum()))}"
                                   f"{_why_not_missing(model, binding.node)}.")
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
    if node.shape:
        per = f"[{', '.join(map(str, node.shape))}], {node.size}"
    give = "gives" if len(binding.columns) == 1 else "give"
    _fail(model, binding.span, f"'{node.name}' takes {per} values per row, but {_describe(table, binding)} "
                               f"{give} {width}.")


def _describe(table: Table, binding: ir.Binding) -> str:
    what = f"column '{binding.columns[0]}'" if len(binding.columns) == 1 else \
        f"columns [{', '.join(binding.columns)}]"
    return f"{what} of {_name(table)}" + (f" after {binding.transform}" if binding.transform else "")


def _check(model: ir.Model, table: Table, binding: ir.Binding, values: np.ndarray, inside: np.ndarray,
           needs: str, per_row: bool = False, fix: str = "") -> None:
    """A located error at the first row whose values are not `inside`, then `fix`: the
    transform that brings them there, as the checker suggests for a registered dataset."""
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
                               f"{_how_many(int((~rows_ok).sum()))}.{fix}")


def _how_many(rows: int) -> str:
    return "" if rows == 1 else f" ({rows} rows are like this; the first is shown)"


def _fail(model: ir.Model, span: Span, message: str) -> NoReturn:
    """Raise the error at its place in the spec (the binding, or the data statement):
    framed like every spec error when the model knows its source text, else naming the line."""
    source = model.source_text
    if source is not None:
        raise DataFileError([Diagnostic(severity="error", phase="data", span=span, message=message)], *source)
    raise DataError(f"{message} (line {span.line} of the spec)")
