"""Datasets: what the language sees of them (`base`: columns, each column's size and value
domain, the preprocessing options; the checker reads only this), how a model's data
statement becomes train and test tensors (`split`), the built-in datasets (`builtin`,
`sprites`), the column transforms (`transforms`) and the readers of a user's data file
(`readers`).
The heavy imports (torch, scikit-learn, mnist1d) happen on first load, so `dgmc check`
stays fast.
"""

from ..core.errors import DataError, DataFileError  # the errors of reading data, kept with every error
from .base import DATA_OPTIONS, DATASETS, FLAGS, Column, Dataset, Split, cache_dir, listing, register_dataset
from .builtin import MNIST1D_ARGS
from .split import has_data, load_split, read_source, with_data

__all__ = ["DATASETS", "DATA_OPTIONS", "FLAGS", "MNIST1D_ARGS", "Column", "DataError", "DataFileError", "Dataset",
           "Split", "cache_dir", "has_data", "listing", "load_split", "read_source", "register_dataset", "with_data"]
