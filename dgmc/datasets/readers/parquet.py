"""Apache Parquet files, through pyarrow (the optional extra `dgmc[parquet]`): numeric
columns become 1-d columns, fixed-size lists of numbers (or lists all of one length)
array columns [rows, size]. A null becomes NaN, which the value checks then report at its
row, like any other non-finite value."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import DataError
from .base import Table, _os_errors


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow: pip install 'dgmc[parquet]'.") from None
    with _os_errors(path):
        try:
            table = pq.read_table(path, memory_map=True)
        except (pa.ArrowException, ValueError) as error:
            raise DataError(f"{path}: not a readable Parquet file ({error}).") from None
    if table.num_columns == 0:
        raise DataError(f"{path}: the file holds no columns.")
    columns = {name: _column(path, name, table.column(name), pa) for name in table.column_names}
    return Table(path=path, format="parquet", columns=columns, rows=table.num_rows)


def _column(path: Path, name: str, column, pa) -> np.ndarray:
    """One column as numpy: numbers as they are (float64 where a null needs NaN), a list
    column as [rows, size]."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        if column.null_count:
            return column.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        return column.to_numpy()
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _list_column(path, name, column, pa)
    raise DataError(f"{path}: the column '{name}' holds {kind}; dgmc reads numbers, or lists of numbers.")


def _list_column(path: Path, name: str, column, pa) -> np.ndarray:
    values = column.combine_chunks()
    if values.null_count:
        first = values.is_null().to_numpy(zero_copy_only=False).argmax()
        raise DataError(f"{path}, row {first}, column '{name}': the list is missing (null).")
    item = values.type.value_type
    if not (pa.types.is_integer(item) or pa.types.is_floating(item) or pa.types.is_boolean(item)):
        raise DataError(f"{path}: the column '{name}' holds lists of {item}; dgmc reads lists of numbers.")
    lengths = pa.compute.list_value_length(values).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        row = int((lengths != lengths[0]).argmax())
        raise DataError(f"{path}, row {row}, column '{name}': a list of {lengths[row]} values, but row 0 has "
                        f"{lengths[0]}; an array column has one length.")
    flat = values.flatten().to_numpy(zero_copy_only=False)
    if flat.dtype == object:  # nulls inside the lists
        flat = flat.astype(np.float64)
    return flat.reshape(len(values), int(lengths[0]) if len(lengths) else 0)
