"""The built-in datasets. Nothing is ever downloaded: scikit-learn's digits ship inside
scikit-learn, the Old Faithful CSV inside this package (dgmc/data/), and mnist1d is
generated from code, then cached. The heavy imports happen on first load."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import random
import zipfile
from importlib import metadata, resources
from typing import TYPE_CHECKING

from ..core.files import atomic
from ..ir import FILE_DATASET

if TYPE_CHECKING:
    import numpy as np


from .base import DATASETS, FLAGS, Column, Dataset, cache_dir
from .sprites import sprites

MNIST1D_ARGS: dict[str, object] = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60], "scale_coeff": 0.4,
    "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 2e-2, "shear_scale": 0.75,
    "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
}
"""mnist1d's generation arguments (its defaults, less the download URL), pinned here so that
the data do not drift with the package's defaults and the cache key is known without
importing mnist1d (which pulls in matplotlib and scipy: about 1 s)."""


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


CONFOUNDED_EFFECT = 1.0
"""The true average treatment effect of the `confounded` data set: E[y | do(t = 1)] -
E[y | do(t = 0)]."""


def _confounded() -> dict[str, np.ndarray]:
    """A hidden binary confounder z ~ Bernoulli(0.5) drives five noisy proxies x ~ N(z - 0.5,
    1), the treatment t ~ Bernoulli(0.75 if z else 0.25) and the outcome y ~ N(EFFECT * t +
    2 z, 0.5): the naive difference of y between the treated and the untreated is
    EFFECT + 2 (0.75 - 0.25) = 2, twice the true effect, which only a model of z recovers
    (the CEVAE's setting, Louizos et al. 2017). 3000 rows, generated from a fixed seed."""
    import numpy as np

    rng = np.random.default_rng(2017)
    rows = 3000
    z = rng.random(rows) < 0.5
    x = (z[:, None] - 0.5) + rng.standard_normal((rows, 5))
    t = rng.random(rows) < np.where(z, 0.75, 0.25)
    y = CONFOUNDED_EFFECT * t + 2.0 * z + 0.5 * rng.standard_normal(rows)
    return {"proxies": x, "treatment": t[:, None].astype(np.float64), "outcome": y[:, None],
            "confounder": z[:, None].astype(np.float64)}


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
    Dataset("digits", {"pixels": Column(64, "real", doc="8x8 grey levels 0..16", shape=(1, 8, 8)),
                       "label": Column(10, "onehot", doc="the digit, one-hot")},
            flags=FLAGS, exclusive=FLAGS, rows=1797, doc="scikit-learn's load_digits", load=_digits,
            ),  # binarize keeps pixel > 8 (the middle of 0..16), the usual threshold for a Bernoulli model
    Dataset("old_faithful", {"eruptions": Column(1, "real", doc="eruption time, minutes"),
                             "waiting": Column(1, "real", doc="waiting time to the next eruption, minutes")},
            flags=("standardize",), exclusive=(), rows=272,
            doc="Old Faithful geyser, shipped in dgmc/data/old_faithful.csv", load=_old_faithful),
    Dataset("confounded", {"proxies": Column(5, "real", doc="five noisy proxies of the hidden confounder"),
                           "treatment": Column(1, "binary", doc="whether treated, 0 or 1"),
                           "outcome": Column(1, "real", doc="the outcome; the true average effect of treatment is 1"),
                           "confounder": Column(1, "binary", doc="the hidden confounder, for checking only")},
            flags=(), exclusive=(), rows=3000, load=_confounded,
            doc="synthetic causal data with a hidden confounder and a known treatment effect (CEVAE's setting)"),
    Dataset("mnist1d", {"signal": Column(40, "real", sequence=True, doc="a 40-point 1-d signal"),
                        "label": Column(10, "onehot", doc="the class, one-hot")},
            flags=("standardize",), exclusive=(), rows=5000,
            doc="mnist1d sequences generated offline with make_dataset", load=_mnist1d),
    Dataset("sprites", {"image": Column(1024, "binary", doc="a 32x32 binary image of one shape", shape=(1, 32, 32)),
                        "label": Column(3, "onehot", doc="the shape: square, ellipse, heart"),
                        "scale": Column(1, "real", doc="the shape's size, 0.5..1"),
                        "rotation": Column(1, "real", doc="its rotation in radians, 10 steps over a turn"),
                        "x": Column(1, "real", doc="its centre's column, in pixels"),
                        "y": Column(1, "real", doc="its centre's row, in pixels")},
            flags=(), exclusive=(), rows=11520, load=sprites,
            doc="shapes over a grid of scale, rotation and position, rendered from code (dSprites-like)"),
):
    DATASETS.register(_dataset.name, _dataset, origin="dgmc")
