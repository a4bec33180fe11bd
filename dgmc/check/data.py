"""The data block: a known dataset, its options, and columns that fit their nodes.

A column fits a node when the sizes agree (a sequence column of L values feeds a
time-indexed node of size d over T steps when T * d == L) and the values fit the node's
domain after preprocessing (a Bernoulli node needs 0/1 values: `binarize`).
"""

from __future__ import annotations

from .. import ir
from ..datasets import DATA_OPTIONS, DATASETS, Dataset
from ..datasets.transforms import FIXES, TRANSFORMS, fix_for
from ..families import DOMAINS, FAMILIES, NODE_DOMAINS
from ..frontend import syntax as s
from .context import Context, scalars, single
from .nodes import Draft


def check_data(ctx: Context, spec: s.Spec, drafts: dict[str, Draft], time: ir.Time | None) -> ir.Data | None:
    stmt = single(ctx, spec, s.DataStmt, "data")
    if stmt is None:
        return None
    dataset = DATASETS.get(stmt.dataset.text)
    if dataset is None:  # reported, and the rest of the statement checked without its columns
        ctx.unknown("dataset", stmt.dataset, DATASETS)
    flags = _flags(ctx, stmt, dataset)
    options = ctx.keyword_args([a for a in stmt.args if a.key], DATA_OPTIONS, f"The dataset {stmt.dataset.text}")
    bindings = _bindings(ctx, stmt, dataset, drafts, time, flags)
    _all_bound(ctx, stmt, dataset, drafts)
    classes = _classes(ctx, options.get("classes"), dataset)
    test_fraction = _test_fraction(ctx, options.get("test_fraction"))
    labelled = _labelled(ctx, options.get("labelled"), dataset, bindings)
    if dataset is None:
        return None
    return ir.Data(dataset=dataset.name, flags=flags, classes=classes, test_fraction=test_fraction,
                   labelled=labelled, bindings=bindings, span=stmt.span)


def _all_bound(ctx: Context, stmt: s.DataStmt, dataset: Dataset | None, drafts: dict[str, Draft]) -> None:
    """Every observed and input node is bound (to a bad column counts: reported there)."""
    named = {binding.node.text for binding in stmt.bindings}
    has = ""  # an unknown dataset's columns are not known
    if dataset is not None:
        has = f"; {dataset.name} has {', '.join(dataset.columns)}" if dataset.columns else "; a column of the file"
    for draft in drafts.values():
        if draft.kind in ("observed", "input") and draft.name not in named:
            ctx.error(draft.decl.name.span, f"The {draft.kind} node '{draft.name}' has no data: bind a "
                      f"column to it in the data block ({draft.name} = ...{has}).")


def _flags(ctx: Context, stmt: s.DataStmt, dataset: Dataset | None) -> tuple[str, ...]:
    """The dataset's options given by name; an unknown dataset's are not checked."""
    if dataset is None:
        return ()
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


def _bindings(ctx: Context, stmt: s.DataStmt, dataset: Dataset | None, drafts: dict[str, Draft],
              time: ir.Time | None, flags: tuple[str, ...]) -> dict[str, ir.Binding]:
    """Each binding's node and transform; its columns and their fit where the dataset's
    columns are known (a registered dataset, not a file or an unknown one)."""
    bindings: dict[str, ir.Binding] = {}
    for binding in stmt.bindings:
        draft = drafts.get(binding.node.text)
        columns = [c for c in binding.columns if _column_exists(ctx, c, dataset)]
        transform = _transform(ctx, binding.source) if isinstance(binding.source, s.Transform) else (None, {})
        if draft is None:
            ctx.unknown("node", binding.node, drafts, listed=False)
        elif not _takes_data(draft):
            why = "has no guide to infer it where the data miss it" if draft.kind == "latent" else "is deterministic"
            ctx.error(binding.node.span, f"'{draft.name}' {why}: observed and input nodes take data, and latents "
                      "whose guide infers them where a value is missing.")
        elif draft.name in bindings:
            ctx.error(binding.span, f"'{draft.name}' is already bound to '{bindings[draft.name].label}'.")
        if (draft is None or len(columns) < len(binding.columns) or transform[0] is False
                or not _takes_data(draft) or draft.name in bindings):
            continue
        bound = ir.Binding(node=draft.name, columns=tuple(c.text for c in columns), transform=transform[0],
                           args=transform[1], span=binding.span)
        bindings[draft.name] = bound
        if dataset is not None and dataset.name != ir.FILE_DATASET:  # a file's columns: known when it is read
            _fits(ctx, binding, bound, draft, dataset, time, flags)
    return bindings


def _takes_data(draft: Draft) -> bool:
    """Observed and input nodes take data; a latent with a guide may too (observed where
    present, inferred where missing)."""
    return draft.kind in ("observed", "input") or (draft.kind == "latent" and draft.guided)


def _column_exists(ctx: Context, column: s.Name, dataset: Dataset | None) -> bool:
    if dataset is None or dataset.name == ir.FILE_DATASET or column.text in dataset.columns:
        return True
    ctx.unknown("column", column, dataset.columns, of=dataset.name)
    return False


def _transform(ctx: Context, source: s.Transform) -> tuple[str | bool, dict[str, float]]:
    """The transform's name and numeric arguments; (False, {}) when it does not check."""
    transform = TRANSFORMS.get(source.name.text)
    if transform is None:
        ctx.unknown("data transform", source.name, TRANSFORMS)
        return False, {}
    given = ctx.keyword_args(source.args, transform.args, f"The transform {transform.name}")
    args = {}
    for key, arg in given.items():
        value = ctx.number(arg.value, f"'{key}' of {transform.name}")
        if value is not None:
            args[key] = float(value)
    if transform.name == "onehot" and args.get("classes", 2) < 2:
        ctx.error(given["classes"].value.span, "onehot needs classes >= 2.")
    return transform.name, args


def _fits(ctx: Context, syntax: s.Binding, binding: ir.Binding, draft: Draft, dataset: Dataset,
          time: ir.Time | None, flags: tuple[str, ...]) -> None:
    """A binding of a registered dataset fits its node: widths and sequences agree, and
    the values (after the transform or the dataset's option) lie in the node's domain."""
    columns = [dataset.columns[c] for c in binding.columns]
    where = f"column '{binding.label}' of {dataset.name}" if len(columns) == 1 else \
        f"columns [{', '.join(binding.columns)}] of {dataset.name}"
    sequence = any(c.sequence for c in columns)
    size = sum(c.size for c in columns)
    if binding.transform == "onehot":
        size = int(binding.args.get("classes", columns[0].size if columns[0].domain == "onehot" else 0)) or size
    elif binding.transform == "present":
        size = 1
    if sequence and not draft.timed:
        ctx.error(syntax.span, f"The {where} is a sequence of {size} values; '{draft.name}' has "
                  f"no time dimension. Declare it {draft.name}[{ctx.time_var}] with a `time` statement.")
    elif draft.timed and not sequence:
        ctx.error(syntax.span, f"'{draft.name}' is time-indexed but the {where} is not a sequence.")
    elif draft.size is None:
        pass  # the size did not resolve: reported at the declaration
    elif draft.timed and time is not None and time.steps * draft.size != size:
        ctx.error(syntax.span, f"The {where} has {size} values per sequence, but "
                  f"'{draft.name}' takes {draft.size} per step over {time.steps} steps "
                  f"({time.steps * draft.size}).")
    elif not draft.timed and draft.size != size:
        has = f"shape [{', '.join(map(str, draft.shape))}] ({draft.size} values)" if draft.shape else \
            f"size {draft.size}"
        ctx.error(syntax.span, f"'{draft.name}' has {has}, but the {where} has {size} values per row.")
    family = FAMILIES.get(draft.type)
    needs = family.domain if family else NODE_DOMAINS.get(draft.type)
    has = _domain(binding, columns, flags)
    if needs in FIXES and has != needs and not (needs == "unit" and has == "binary"):
        ctx.error(syntax.span, f"'{draft.name}' is {draft.type} and needs values that are {DOMAINS[needs].doc}; the "
                  f"{where} holds {has} values.{fix_for(draft.name, binding.columns, needs)}")


def _domain(binding: ir.Binding, columns: list, flags: tuple[str, ...]) -> str:
    """The domain of a binding's values: its transform's, else its columns' (real columns
    through the dataset's option)."""
    if binding.transform is not None:
        return TRANSFORMS[binding.transform].domain or "real"
    domain = columns[0].domain
    if domain == "real":
        flag = next((f for f in flags if f in TRANSFORMS), None)
        return TRANSFORMS[flag].domain if flag else "real"
    return domain


def _classes(ctx: Context, arg: s.Arg | None, dataset: Dataset | None) -> tuple[int, ...] | None:
    """The classes to keep; checked against the `label` column where it is known (not
    a file's, read later, nor an unknown dataset's)."""
    if arg is None:
        return None
    label = dataset.columns.get("label") if dataset is not None else None
    if label is None and dataset is not None and dataset.name != ir.FILE_DATASET:
        ctx.error(arg.span, f"{dataset.name} has no classes to choose from.")
        return None
    if isinstance(arg.value, s.ListValue) and not arg.value.items:
        named = dataset.name if dataset is not None else "the dataset"
        ctx.error(arg.value.span, f"classes = [] would keep no rows: list the classes of {named} to keep.")
        return None
    chosen: list[int] = []
    for item in scalars(arg.value):
        value = ctx.integer(item, "A class", 0)
        if value is not None and label is not None and value >= label.size:
            ctx.error(item.span, f"{dataset.name} has classes 0..{label.size - 1}, not {value}.")
        elif value is not None and value in chosen:
            ctx.error(item.span, f"Class {value} is listed twice.")
        elif value is not None:
            chosen.append(value)
    return tuple(chosen)


def _labelled(ctx: Context, arg: s.Arg | None, dataset: Dataset | None, bindings: dict[str, ir.Binding]) -> float:
    """`labelled = 0.1`: a share in (0, 1] of the training rows that keep their labels, for
    a dataset whose labels (one-hot columns) feed a node."""
    if arg is None:
        return 1.0
    value = ctx.number(arg.value, "labelled")
    if value is None or not 0 < value <= 1:
        if value is not None:
            ctx.error(arg.value.span, f"labelled is a share of the training rows, in (0, 1], not {value:g}.")
        return 1.0
    labels = [c for c, column in (dataset.columns.items() if dataset else ()) if column.domain == "onehot"]
    if dataset is not None and dataset.name != ir.FILE_DATASET and \
            not any(set(b.columns) & set(labels) for b in bindings.values()):
        ctx.error(arg.span, f"labelled hides class labels, but no node is bound to a label column of "
                  f"{dataset.name}{' (' + ', '.join(labels) + ')' if labels else ''}.")
    if dataset is not None and dataset.name == ir.FILE_DATASET:
        ctx.error(arg.span, "labelled hides a registered dataset's labels; in a data file, leave the missing "
                  "values empty (NaN) instead.")
    return float(value)


def _test_fraction(ctx: Context, arg: s.Arg | None) -> float:
    if arg is None:
        return 0.2
    value = ctx.number(arg.value, "test_fraction")
    if value is None or not 0 < value < 1:
        if value is not None:
            ctx.error(arg.value.span, f"test_fraction is a share of the rows, strictly between 0 and 1, not {value:g}.")
        return 0.2
    return float(value)
