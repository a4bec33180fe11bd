"""The pictures a person looks at after training a model (teacher or student), as PNGs.

Which pictures are drawn follows from the graph IR and the data binding alone, never from a
spec's name: an observed node bound to an image column gets a grid of model means next to
real test images (one row per class when an input is bound to the label); observed real
columns that add up to two dimensions get a scatter of model samples over the data; a
time-indexed observed node gets sampled sequences against real ones; an observed Categorical
bound to the label and computed from inputs gets a confusion matrix. A training history gets
loss curves. Drawing uses matplotlib's Agg canvas directly, so no global backend is switched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.files import atomic
from ..datasets import Split
from ..lower.module import CompiledModel, Trace

IMAGE_COLUMNS = ("pixels", "image")
"""Dataset columns that hold square images, one row per image."""
LABEL_COLUMN = "label"
SEQUENCES = 4
"""How many sampled and how many real sequences the sequence picture shows."""
MODEL, TEST, TRAIN = "tab:orange", "tab:blue", "0.7"


@dataclass(frozen=True)
class _Job:
    """What every picture needs: the model, the data, the random stream and a title head."""

    compiled: CompiledModel
    split: Split
    generator: torch.Generator
    samples: int
    head: str

    @property
    def columns(self) -> dict[str, str]:
        data = self.compiled.ir.data
        return dict(data.columns) if data is not None else {}

    def sample(self, rows: torch.Tensor, override: Mapping[str, torch.Tensor] | None = None) -> Trace:
        """Ancestral samples, one per test row in `rows`, each input node given that row's
        value (or `override`'s), on the model's device."""
        device = next(self.compiled.buffers()).device
        inputs = {n.name: self.split.test[n.name][rows] for n in self.compiled.ir.of_kind("input")}
        inputs = {k: v.to(device) for k, v in {**inputs, **(override or {})}.items()}
        return self.compiled.sample(len(rows), inputs, self.generator)

    def mean(self, node: str, trace: Trace) -> tuple[np.ndarray, str]:
        """The node's mean from its family entry (`Family.mean`), or, for a family without
        one, the sampled values; and which of the two it is ("mean" or "sample")."""
        mean = self.compiled.families[node].mean(trace.params[node])
        shown, word = (trace.values[node], "sample") if mean is None else (mean, "mean")
        return shown.float().cpu().numpy(), word

    def labels(self) -> torch.Tensor | None:
        """The test rows' classes: the label column, or the bound label node's argmax."""
        if self.split.test_labels is not None:
            return self.split.test_labels
        bound = [n for n, c in self.columns.items() if c == LABEL_COLUMN and n in self.split.test]
        return self.split.test[bound[0]].argmax(-1) if bound else None


def write_pictures(compiled: CompiledModel, split: Split, out_dir: Path, prefix: str = "teacher",
                   generator: torch.Generator | None = None, samples: int = 64,
                   history: Mapping[str, Sequence[float]] | None = None) -> list[Path]:
    """Write every picture that fits `compiled`'s graph and data to `out_dir` as
    `{prefix}_{picture}[_{node}].png` (and `{prefix}_loss.png` from `history`), so that one
    call after training shows whether the model learned its data. Deterministic given
    `generator` (seed 0 when None); the model is put back in the mode it was in."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    job = _Job(compiled, split, generator, samples, f"{compiled.ir.name} ({prefix})")
    written = []
    training = compiled.training
    compiled.eval()
    try:
        with torch.no_grad():
            for name, draw in _choose(job):
                written.append(_save(draw(job), out_dir / f"{prefix}_{name}.png"))
    finally:
        compiled.train(training)
    if history is not None:
        written.append(write_loss_curves(history, out_dir / f"{prefix}_loss.png", f"{job.head}: training loss"))
    return written


def _choose(job: _Job) -> list[tuple[str, Callable[[_Job], Figure]]]:
    """The pictures this model and split call for, by file-name stem, from the IR's node kinds,
    families and sizes (and the bound columns' names). A picture that needs an input the
    split does not hold is left out rather than failing."""
    model, data = job.compiled.ir, job.compiled.ir.data
    if data is None or any(n.name not in job.split.test for n in model.of_kind("input")):
        return []
    columns = job.columns
    bound = [n for n in model.of_kind("observed") if n.name in job.split.test]
    chosen: list[tuple[str, Callable[[_Job], Figure]]] = []
    for node in bound:
        image = _image_shape(node, columns[node.name])
        if node.timed:
            chosen.append((f"sequences_{node.name}", partial(_sequences, node=node.name)))
        elif image is not None:
            chosen.append((f"samples_{node.name}", partial(_images, node=node.name, shape=image)))
        elif node.family.event and _from_inputs(job, node.name):
            chosen.append((f"confusion_{node.name}", partial(_confusion, node=node.name)))
    real = [n for n in bound if not n.timed and n.family.domain in ("real", "positive")]
    if sum(n.size for n in real) == 2:
        chosen.append(("scatter", partial(_scatter, nodes=[n.name for n in real])))
    return chosen


def _image_shape(node, column: str) -> tuple[int, int, int] | None:
    """(C, H, W) when the node's values are an image: declared [1 or 3, H, W] or [H, W],
    or a square vector of pixels (an image column, or binary or [0, 1] values)."""
    if node.shape is not None:
        shape = node.shape if len(node.shape) == 3 else (1, *node.shape) if len(node.shape) == 2 else None
        return shape if shape is not None and shape[0] in (1, 3) else None
    side = math.isqrt(node.size)
    square = side ** 2 == node.size and node.size > 1
    if square and (column in IMAGE_COLUMNS or node.family.domain in ("binary", "unit")):
        return (1, side, side)
    return None


def _from_inputs(job: _Job, node: str) -> bool:
    """Whether `node` has parents and is computed from inputs alone (through deterministic
    nodes): then its distribution given the inputs is exact, a classifier's prediction."""
    model, seen, todo = job.compiled.ir, set(), [node]
    while todo:
        for parent in model.node(todo.pop()).parents:
            if parent.name not in seen:
                seen.add(parent.name)
                todo.append(parent.name)
    return bool(seen) and all(model.node(n).kind in ("input", "deterministic") for n in seen - {node})


def _images(job: _Job, node: str, shape: tuple[int, int, int]) -> Figure:
    """Model means (the expected image, which shows what the model learned better than noisy
    binary draws; samples for a family without a mean) next to real test images; one row
    per class for a label-conditioned model."""
    real, labels = job.split.test[node].reshape(len(job.split.test[node]), -1), job.labels()
    per_row = max(1, math.isqrt(job.samples))
    label_input = next((n for n in job.compiled.ir.of_kind("input") if job.columns.get(n.name) == LABEL_COLUMN), None)
    if label_input is None or labels is None:
        rows = torch.arange(job.samples) % len(real)
        (model, word), shown, row_names = job.mean(node, job.sample(rows)), real[rows[: len(real)]].numpy(), None
    else:
        classes = job.compiled.ir.data.classes or range(label_input.size)
        model_rows, real_rows = [], []
        for c in classes:
            rows = (labels == c).nonzero().flatten()[:per_row]
            pick = rows[torch.arange(per_row) % len(rows)] if len(rows) else torch.zeros(per_row, dtype=torch.long)
            onehot = torch.zeros(per_row, label_input.size).index_fill_(1, torch.tensor([c]), 1.0)
            tiles, word = job.mean(node, job.sample(pick, {label_input.name: onehot}))
            model_rows.append(tiles)
            real_rows.append(np.full((per_row, real.shape[1]), np.nan, dtype=np.float32))
            real_rows[-1][: len(rows)] = real[rows].numpy()
        model, shown, row_names = np.concatenate(model_rows), np.concatenate(real_rows), [str(c) for c in classes]
    low, high = float(np.nanmin(real.numpy())), float(np.nanmax(real.numpy()))
    aspect = math.ceil(len(model) / per_row) / per_row  # grid rows per grid column
    fig = Figure(figsize=(10, min(max(4.4 * aspect + 1.2, 3.0), 12.0)), layout="constrained")
    parents = ", ".join(p.name for p in job.compiled.ir.node(node).parents)
    what = f"{word} of p({node} | {parents})" if parents else f"{word} of p({node})"
    panels = (model, f"model: {what}"), (shown, "real test images")
    for ax, (tiles, title) in zip(fig.subplots(1, 2), panels, strict=True):
        _mosaic(ax, _tiles(tiles, shape), per_row, low, high)
        ax.set_title(title)
        if row_names is not None:
            height = shape[1]
            ax.set_yticks([(height + 1) * i + height / 2 - 0.5 for i in range(len(row_names))], row_names)
            ax.set_ylabel(f"class ({label_input.name})")
    fig.suptitle(f"{job.head}: {node}", fontweight="bold")
    return fig


def _tiles(flat: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Flat rows as images: [n, H, W] for one channel, [n, H, W, 3] for colour."""
    images = flat.reshape(-1, *shape)
    return images[:, 0] if shape[0] == 1 else images.transpose(0, 2, 3, 1)


def _mosaic(ax, tiles: np.ndarray, per_row: int, low: float, high: float) -> None:
    """Tiles in a grid, one pixel of background colour between them; colour tiles are
    scaled from [low, high] to [0, 1] (the background then shows white)."""
    n, height, width = tiles.shape[:3]
    rows = math.ceil(n / per_row)
    grid = np.full((rows * (height + 1) - 1, per_row * (width + 1) - 1, *tiles.shape[3:]), np.nan)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, per_row)
        grid[r * (height + 1): r * (height + 1) + height, c * (width + 1): c * (width + 1) + width] = tile
    if grid.ndim == 3:
        ax.imshow(np.nan_to_num(np.clip((grid - low) / max(high - low, 1e-12), 0, 1), nan=1.0), interpolation="nearest")
    else:
        cmap = colormaps["gray_r"].with_extremes(bad="#c8d4e3")
        ax.imshow(grid, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _scatter(job: _Job, nodes: list[str]) -> Figure:
    """Model draws (sampled values, noise and all: the density is the point) over the train
    and test data, as many draws as data rows so the two clouds compare at a glance."""
    split = job.split
    n = max(job.samples, split.rows("train") + split.rows("test"))
    trace = job.sample(torch.arange(n) % split.rows("test"))
    points = {"model samples": torch.cat([trace.values[v] for v in nodes], -1).cpu(),
              "train data": torch.cat([split.train[v] for v in nodes], -1),
              "test data": torch.cat([split.test[v] for v in nodes], -1)}
    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    ax = fig.subplots()
    for (label, xy), colour, marker in zip(points.items(), (MODEL, TRAIN, TEST), ("o", "s", "^"), strict=True):
        ax.scatter(xy[:, 0], xy[:, 1], s=14, c=colour, marker=marker, alpha=0.6, linewidths=0,
                   label=f"{label} ({len(xy)})")
    sizes = {v: job.compiled.ir.node(v).size for v in nodes}
    names = [(f"{v}[{i}]" if sizes[v] > 1 else v, job.columns[v]) for v in nodes for i in range(sizes[v])]
    scale = " (standardized)" if "standardize" in job.compiled.ir.data.flags else ""
    ax.set_xlabel(f"{names[0][0]}: {names[0][1]}{scale}")
    ax.set_ylabel(f"{names[1][0]}: {names[1][1]}{scale}")
    ax.legend(loc="best", framealpha=0.9)
    ax.set_title(f"{job.head}: samples of {', '.join(nodes)}", fontweight="bold")
    return fig


def _sequences(job: _Job, node: str) -> Figure:
    """A few sampled sequences (each step's draw and its mean) above a few real test
    sequences, each flattened to the column's T * size points."""
    rows = torch.arange(SEQUENCES) % job.split.rows("test")
    trace = job.sample(rows)
    drawn = trace.values[node].float().cpu().reshape(len(rows), -1).numpy()
    mean, word = job.mean(node, trace)
    mean = mean.reshape(len(rows), -1)
    real, labels = job.split.test[node][rows].reshape(len(rows), -1).numpy(), job.labels()
    size = job.compiled.ir.node(node).size
    fig = Figure(figsize=(3.2 * SEQUENCES, 5.6), layout="constrained")
    axes = fig.subplots(2, SEQUENCES, sharex=True, sharey=True, squeeze=False)
    steps = np.arange(drawn.shape[1])
    for i in range(SEQUENCES):
        axes[0, i].plot(steps, drawn[i], ".", color=MODEL, alpha=0.6, label="sampled value")
        axes[0, i].plot(steps, mean[i], "-", color="tab:red", label=word)
        axes[0, i].set_title(f"model sample {i + 1}")
        axes[1, i].plot(steps, real[i], "-", color=TEST, label="test data")
        label = f" (label {int(labels[rows[i]])})" if labels is not None else ""
        axes[1, i].set_title(f"test row {int(rows[i])}{label}")
        axes[1, i].set_xlabel("t" if size == 1 else f"t * {size} + i")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{node} ({job.columns[node]})")
    handles = [h for ax in axes[:, 0] for h in ax.get_legend_handles_labels()[0]]
    fig.legend(handles, [str(h.get_label()) for h in handles], loc="outside lower center", ncols=3)
    fig.suptitle(f"{job.head}: sequences of {node}", fontweight="bold")
    return fig


def _confusion(job: _Job, node: str) -> Figure:
    """The prediction (argmax of the node's probabilities given the test inputs) against the
    true class: row-normalized colours, counts written in, accuracy in the title."""
    n = job.split.rows("test")
    probs = job.mean(node, job.sample(torch.arange(n)))[0]
    true, pred = job.split.test[node].argmax(-1).numpy(), probs.argmax(-1)
    k = probs.shape[-1]
    counts = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    classes = list(job.compiled.ir.data.classes or range(k))  # rows: the classes the data hold
    shown = sorted(set(classes) | set(pred.tolist()))  # columns: those, and any other predicted
    counts, share = counts[np.ix_(classes, shown)], share[np.ix_(classes, shown)]
    fig = Figure(figsize=(6.8, 6.0), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        if count:
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(shown)), [str(c) for c in shown])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set_xlabel(f"predicted {node} (argmax of p({node} | ·))")
    ax.set_ylabel(f"true {node}")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class's rows")
    ax.set_title(f"{job.head}: test accuracy {np.mean(true == pred):.1%} ({n} rows)", fontweight="bold")
    return fig


def write_loss_curves(history: Mapping[str, Sequence[float]], path: Path, title: str) -> Path:
    """One line per logged term over the steps, raw (faint) and smoothed by a moving average
    (solid), so trends show through minibatch noise. Terms that stay positive share a log
    axis (they span decades); the others go on a linear axis beside it."""
    terms = {k: np.asarray(v, dtype=float) for k, v in history.items() if len(v)}
    positive = [k for k, v in terms.items() if np.isfinite(v).any() and np.all(v[np.isfinite(v)] > 0)]
    panels = [(keys, scale) for keys, scale in ((positive, "log"), ([k for k in terms if k not in positive], "linear"))
              if keys] or [([], "linear")]
    fig = Figure(figsize=(7.6 * len(panels), 4.8), layout="constrained")
    for ax, (keys, scale) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        for key in keys:
            colour, dashes = _style(list(terms).index(key))  # a term keeps its style across panels
            ax.plot(terms[key], color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(_smooth(terms[key]), color=colour, linestyle=dashes, linewidth=1.8, label=key)
        ax.set_yscale(scale)
        ax.set_xlabel("step")
        ax.set_ylabel("value" + (" (log scale)" if scale == "log" else ""))
        ax.grid(True, which="major", alpha=0.3)
        if keys:  # beside the curves, never over them
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False,
                      ncols=1 + len(keys) // 16)
            ax.set_title("terms always > 0" if scale == "log" else "terms that reach 0 or below")
        else:
            ax.text(0.5, 0.5, "nothing logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontweight="bold")
    return _save(fig, Path(path))


LINE_STYLES = ("solid", "dashed", "dotted", "dashdot")


def _style(index: int) -> tuple[tuple[float, ...], str]:
    """The colour and line style of the `index`-th term: 20 distinct colours (tab20),
    then the same colours dashed, dotted, ..., so no two curves look alike."""
    from matplotlib import colormaps

    return colormaps["tab20"](index % 20), LINE_STYLES[index // 20 % len(LINE_STYLES)]


def _smooth(values: np.ndarray) -> np.ndarray:
    """Centred moving average over about a twentieth of the run, so the curve does not lag
    the steps; cut short at the ends (still averaging, so no spike there); non-finite values
    are skipped."""
    index, half = np.arange(len(values)), len(values) // 40
    finite = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    start, stop = np.maximum(index - half, 0), np.minimum(index + half + 1, len(values))
    n = counts[stop] - counts[start]
    return np.where(n > 0, (sums[stop] - sums[start]) / np.maximum(n, 1), np.nan)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic(path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)
    return path
