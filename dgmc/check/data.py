"""The data block: a known dataset, its options, and columns that fit their nodes.

A column fits a node when the sizes agree (a sequence column of L values feeds a
time-indexed node of size d over T steps when T * d == L) and the values fit the node's
domain after preprocessing (a Bernoulli node needs 0/1 values: `binarize`).
"""

from __future__ import annotations

from .. import ir
from .. import syntax as s
from ..datasets import DATA_OPTIONS, DATASETS, Column, Dataset
from ..families import FAMILIES, NODE_DOMAINS
from .context import Context, scalars, single
from .nodes import Draft


def check_data(ctx: Context, spec: s.Spec, drafts: dict[str, Draft], time: ir.Time | None) -> ir.Data | None:
    stmt = single(ctx, spec, s.DataStmt, "data")
    if stmt is None:
        return None
    dataset = DATASETS.get(stmt.dataset.text)
    if dataset is None:
        ctx.unknown("dataset", stmt.dataset, DATASETS)
        return None
    flags = _flags(ctx, stmt, dataset)
    options = ctx.keyword_args([a for a in stmt.args if a.key], DATA_OPTIONS, f"The dataset {dataset.name}")
    columns = _bindings(ctx, stmt, dataset, drafts, time, flags)
    named = {binding.node.text for binding in stmt.bindings}  # bound, if to a bad column: reported there
    for draft in drafts.values():
        if draft.kind in ("observed", "input") and draft.name not in named:
            ctx.error(draft.decl.name.span, f"The {draft.kind} node '{draft.name}' has no data: bind a "
                      f"column to it in the data block ({draft.name} = ...; {dataset.name} has "
                      f"{', '.join(dataset.columns)}).")
    return ir.Data(
        dataset=dataset.name, flags=flags, classes=_classes(ctx, options.get("classes"), dataset),
        test_fraction=_test_fraction(ctx, options.get("test_fraction")), columns=columns, span=stmt.span,
    )


def _flags(ctx: Context, stmt: s.DataStmt, dataset: Dataset) -> tuple[str, ...]:
    flags: list[str] = []
    for arg in stmt.args:
        if arg.key is not None:
            continue
        if not isinstance(arg.value, s.Name):
            ctx.error(arg.span, f"Options of {dataset.name} are names ({', '.join(dataset.flags)}) "
                      "or key = value.")
        elif arg.value.text not in dataset.flags:
            ctx.unknown("option", arg.value, dataset.flags, of=dataset.name)
        elif arg.value.text in flags:
            ctx.error(arg.span, f"The option '{arg.value.text}' is given twice.")
        elif arg.value.text in dataset.exclusive and set(flags) & set(dataset.exclusive):
            other = next(f for f in flags if f in dataset.exclusive)
            ctx.error(arg.span, f"'{arg.value.text}' and '{other}' both rescale the same values; choose one.")
        else:
            flags.append(arg.value.text)
    return tuple(flags)


def _bindings(ctx: Context, stmt: s.DataStmt, dataset: Dataset, drafts: dict[str, Draft],
              time: ir.Time | None, flags: tuple[str, ...]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for binding in stmt.bindings:
        draft = drafts.get(binding.node.text)
        column = dataset.columns.get(binding.column.text)
        if draft is None:
            ctx.unknown("node", binding.node, drafts, listed=False)
        elif draft.kind not in ("observed", "input"):
            ctx.error(binding.node.span, f"'{draft.name}' is {draft.kind}: only observed and input "
                      "nodes take data.")
        elif draft.name in columns:
            ctx.error(binding.span, f"'{draft.name}' is already bound to column '{columns[draft.name]}'.")
        if column is None:
            ctx.unknown("column", binding.column, dataset.columns, of=dataset.name)
        if draft is None or column is None or draft.kind not in ("observed", "input") or draft.name in columns:
            continue
        columns[draft.name] = binding.column.text
        _fits(ctx, binding, draft, column, dataset, time, flags)
    return columns


def _fits(ctx: Context, binding: s.Binding, draft: Draft, column: Column, dataset: Dataset,
          time: ir.Time | None, flags: tuple[str, ...]) -> None:
    where = f"column '{binding.column.text}' of {dataset.name}"
    if column.sequence and not draft.timed:
        ctx.error(binding.span, f"The {where} is a sequence of {column.size} values; '{draft.name}' has "
                  f"no time dimension. Declare it {draft.name}[{ctx.time_var}] with a `time` statement.")
    elif draft.timed and not column.sequence:
        ctx.error(binding.span, f"'{draft.name}' is time-indexed but the {where} is not a sequence.")
    elif draft.size is None:
        pass  # the size did not resolve: reported at the declaration
    elif draft.timed and time is not None and time.steps * draft.size != column.size:
        ctx.error(binding.span, f"The {where} has {column.size} values per sequence, but "
                  f"'{draft.name}' takes {draft.size} per step over {time.steps} steps "
                  f"({time.steps * draft.size}).")
    elif not draft.timed and draft.size != column.size:
        ctx.error(binding.span, f"'{draft.name}' has size {draft.size}, but the {where} has "
                  f"{column.size} values per row.")
    family = FAMILIES.get(draft.type)
    needs = family.domain if family else NODE_DOMAINS.get(draft.type)
    has = "binary" if column.domain == "real" and "binarize" in flags else column.domain
    if needs == "binary" and has != "binary":
        can_binarize = "binarize" in dataset.flags and column.domain == "real"
        fix = " Add `binarize` to the dataset's options." if can_binarize else ""
        ctx.error(binding.span, f"'{draft.name}' is {draft.type} and needs 0/1 values; the {where} "
                  f"holds {has} values.{fix}")
    elif needs == "onehot" and has != "onehot":
        ctx.error(binding.span, f"'{draft.name}' is {draft.type} and needs one-hot classes; the {where} "
                  f"holds {has} values.")


def _classes(ctx: Context, arg: s.Arg | None, dataset: Dataset) -> tuple[int, ...] | None:
    if arg is None:
        return None
    label = dataset.columns.get("label")
    if label is None:
        ctx.error(arg.span, f"{dataset.name} has no classes to choose from.")
        return None
    if isinstance(arg.value, s.ListValue) and not arg.value.items:
        ctx.error(arg.value.span, f"classes = [] would keep no rows: list the classes of {dataset.name} to keep.")
        return None
    chosen: list[int] = []
    for item in scalars(arg.value):
        value = ctx.integer(item, "A class", 0)
        if value is not None and value >= label.size:
            ctx.error(item.span, f"{dataset.name} has classes 0..{label.size - 1}, not {value}.")
        elif value is not None and value in chosen:
            ctx.error(item.span, f"Class {value} is listed twice.")
        elif value is not None:
            chosen.append(value)
    return tuple(chosen)


def _test_fraction(ctx: Context, arg: s.Arg | None) -> float:
    if arg is None:
        return 0.2
    value = ctx.number(arg.value, "test_fraction")
    if value is None or not 0 < value < 1:
        if value is not None:
            ctx.error(arg.value.span, f"test_fraction is a share of the rows, strictly between 0 and 1, not {value:g}.")
        return 0.2
    return float(value)
