"""Declarations: constants, the time statement, and the nodes with their types.

Produces one `Draft` per declared node (even a badly declared one, so that later checks
do not cascade into "unknown node" errors); edges and guides are added to the drafts by
`dgmc.check.edges`, and `freeze` turns them into graph-IR nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import ir
from ..core.base import Span
from ..core.errors import did_you_mean
from ..families import DETERMINISTIC_TYPES, FAMILIES, NODE_DOMAINS, param_spec
from ..frontend import syntax as s
from .context import LEARNED, Context, single, stmts_of

UNSET = "unset"
"""A family parameter the spec does not mention (resolved in `Draft.freeze`)."""


@dataclass
class Draft:
    """A node being checked: its declaration, then its edges, guide and init."""

    decl: s.NodeDecl
    type: str
    size: int | None = None
    """None until resolved (and when it cannot be), so data checks do not compare a guess."""
    shape: tuple[int, ...] | None = None
    """The dimensions of a node declared with several (`[1, 28, 28]`); None for a vector."""
    params: dict[str, ir.Param | str] = field(default_factory=dict)
    """Each of the family's parameters and settings: a number, `learned`, or UNSET."""
    parents: list[ir.Parent] = field(default_factory=list)
    net: ir.Network | None = None
    via: s.Network | None = None
    guide_parents: list[ir.Parent] = field(default_factory=list)
    guide_net: ir.Network | None = None
    guide_via: s.Network | None = None
    init: ir.Param | None = None
    initial: dict[str, ir.Param] | None = None
    init_stmt: s.InitStmt | None = None
    in_guide: bool = False
    """Declared in the guide block: a state only the guide computes and reads."""
    cond: s.CondStmt | None = None
    guide_cond: s.CondStmt | None = None
    """The `~` statements that write its conditional out, in the model and in the guide."""
    exprs: dict[str, ir.Expr] = field(default_factory=dict)
    guide_exprs: dict[str, ir.Expr] = field(default_factory=dict)
    """Their parameters that read nodes (a constant one is fixed in `params`)."""

    @property
    def guided(self) -> bool:
        """Whether it has a guide: edges into it there, or its guide written out."""
        return bool(self.guide_parents) or self.guide_cond is not None

    @property
    def name(self) -> str:
        return self.decl.name.text

    @property
    def dims(self) -> tuple[int | None, ...]:
        """Its shape, or (size,) for a vector (as `ir.Node.dims`)."""
        return self.shape or (self.size,)

    @property
    def kind(self) -> ir.NodeKind:
        return self.decl.kind

    @property
    def timed(self) -> bool:
        return self.decl.time_var is not None

    def freeze(self, default_net: ir.Network) -> ir.Node:
        """The IR node; a parameter the spec left unset is computed by the network of a
        node with parents, and learned (a free parameter) on a node without, also one
        that a spec cannot name (a root Categorical's logits)."""
        net = (self.net or default_net) if self.parents and not self.exprs else None
        unset = "computed" if self.parents else "learned"
        params = {k: unset if v == UNSET else v for k, v in self.params.items()}
        family = FAMILIES.get(self.type) if self.kind in ("latent", "observed") else None
        if family is not None and not self.parents:
            params.update(dict.fromkeys(param_spec(family, params).computed, "learned"))
        initial = self.initial
        if family is not None and initial is not None:  # likewise an initial distribution's
            initial = {**initial, **dict.fromkeys(param_spec(family, initial).computed, "learned")}
        guide = None
        if self.guided:
            span = self.guide_cond.span if self.guide_cond else self.guide_parents[0].span
            guide_net = None if self.guide_cond else self.guide_net or default_net
            guide = ir.Guide(parents=tuple(self.guide_parents), net=guide_net, exprs=self.guide_exprs, span=span)
        return ir.Node(
            name=self.name, kind=self.kind, type=self.type, size=self.size, shape=self.shape, params=params,
            timed=self.timed, init=self.init, initial=initial, parents=tuple(self.parents), net=net, guide=guide,
            exprs=self.exprs,
            span=self.decl.span,
        )


def declare_consts(ctx: Context, spec: s.Spec) -> None:
    spans: dict[str, s.ConstStmt] = {}
    for stmt in stmts_of(spec, s.ConstStmt):
        name = stmt.name.text
        if name in spans:
            ctx.error(stmt.name.span, f"Constant '{name}' is defined twice (first on line {spans[name].span.line}).")
            continue
        ctx.not_keyword(stmt.name)
        if name == LEARNED:
            ctx.error(stmt.name.span, "'learned' marks a parameter as learned; a constant needs another name.")
        spans[name] = stmt
        value = ctx.number(stmt.value, f"Constant '{name}'")
        if value is not None:
            ctx.consts[name] = value


def declare_time(ctx: Context, spec: s.Spec) -> ir.Time | None:
    stmt = single(ctx, spec, s.TimeStmt, "time")
    if stmt is None:
        return None
    ctx.time_var = stmt.var.text
    first = ctx.integer(stmt.first, "The first step", 0)
    last = ctx.integer(stmt.last, "The last step", 0)
    if first is None or last is None:
        return None
    if last < first:
        ctx.error(stmt.span, f"The step range {first}..{last} is empty: the last step must be >= the first.")
        return None
    ctx.steps = (first, last)
    return ir.Time(var=stmt.var.text, first=first, last=last, span=stmt.span)


def declare_nodes(ctx: Context, spec: s.Spec, time: ir.Time | None) -> dict[str, Draft]:
    drafts: dict[str, Draft] = {}
    has_time = bool(stmts_of(spec, s.TimeStmt))
    reported = False
    for decl, in_guide in declarations(spec):
        name = decl.name.text
        if name in drafts:
            first = drafts[name].decl.span.line
            ctx.error(decl.name.span, f"Node '{name}' is declared twice (first on line {first}).")
            continue
        ctx.not_keyword(decl.name)
        if name in ctx.consts:
            ctx.error(decl.name.span, f"'{name}' is already a constant; a node needs another name.")
        drafts[name] = _declare(ctx, decl)
        drafts[name].in_guide = in_guide
        if in_guide and decl.kind != "deterministic":
            ctx.error(decl.span, f"The guide declares only deterministic states of its own (a backward RNN over the "
                      f"observations); '{name}' is {decl.kind}: declare it outside the guide block.")
        reported = _check_time_var(ctx, decl, time, has_time, reported)
    return drafts


def declarations(spec: s.Spec) -> list[tuple[s.NodeDecl, bool]]:
    """Every node declaration in file order, with whether it stands in the guide block."""
    found = []
    for stmt in spec.stmts:
        if isinstance(stmt, s.NodeDecl):
            found.append((stmt, False))
        elif isinstance(stmt, s.GuideBlock):
            found.extend((decl, True) for decl in stmt.decls)
    return found


def _declare(ctx: Context, decl: s.NodeDecl) -> Draft:
    type_name = decl.type.text
    draft = Draft(decl=decl, type=type_name)
    fits = _type_fits_kind(ctx, decl)
    family = FAMILIES.get(type_name) if fits else None
    # The size is checked even under a wrong type, so the data block can still be checked
    # against it; a size that does not resolve stays None (no cascade of size errors).
    draft.size, draft.shape = _shape(ctx, decl, family)
    if not fits:
        return draft
    if family is None:
        ctx.keyword_args(decl.args, (), f"The domain {type_name}")
        return draft
    given = ctx.keyword_args(decl.args, (*family.spec_params, *family.settings), f"The family {type_name}")
    draft.params.update(family_params(ctx, family, given, draft.size))
    for setting, default in family.settings.items():
        arg = given.get(setting)
        value = ctx.positive(arg.value, f"'{setting}' of {family.name}") if arg else None
        draft.params[setting] = default if value is None else value
    return draft


def family_params(ctx: Context, family, given: dict[str, s.Arg], size: int | None) -> dict[str, ir.Param | str]:
    """Each parameter a spec may fix: its number, or a list of one number per dimension
    (each checked against its range), `learned`, or UNSET where the arguments do not give
    it. A one-hot family's probabilities are one list that sums to 1; two names of one
    parameter (Categorical `logits` and `probs`) cannot both be given."""
    params: dict[str, ir.Param | str] = {}
    for param, constraint in family.spec_params.items():
        arg = given.get(param)
        if arg is not None and isinstance(arg.value, s.ListValue):
            value = _fixed_list(ctx, family, param, constraint, arg, size)
        else:
            value = ctx.number_or_learned(arg.value, f"'{param}'") if arg else None
            if value is not None and value != LEARNED and not _in_range(ctx, family, param, constraint, value, arg):
                value = None
            if value not in (None, LEARNED) and family.event and constraint == "unit":
                example = ", ".join([format(1 / size, ".3g")] * size) if size and size <= 5 else "0.2, 0.3, 0.5"
                ctx.error(arg.value.span, f"'{param}' of {family.name} gives each of its classes a probability: a "
                          f"list that sums to 1, such as [{example}].")
                value = None
        params[param] = UNSET if value is None else value
    aliases = family.fix_aliases()
    given_aliases = [p for p in aliases if p in given]
    if len(given_aliases) > 1:
        ctx.error(given[given_aliases[1]].span, f"{' and '.join(given_aliases)} of {family.name} are two names of "
                  "one parameter: give one.")
    else:  # one name per parameter: the one given, else the family's own (Categorical `logits`)
        keep = given_aliases[0] if given_aliases else None
        params = {k: v for k, v in params.items()
                  if k not in aliases or k == keep or (keep is None and family.fix(k, 0.5)[0] == k)}
    return params


def _fixed_list(ctx: Context, family, param: str, constraint: str, arg: s.Arg, size: int | None
                ) -> tuple[float, ...] | None:
    """`probs = [0.2, 0.8]`: one number per dimension, each in the parameter's range; a
    one-hot family's probabilities sum to 1."""
    numbers = [ctx.number(item, f"'{param}'") for item in arg.value.items]
    if None in numbers or not numbers:
        if not numbers:
            ctx.error(arg.value.span, f"'{param}' lists nothing: give one number per dimension.")
        return None
    located = [s.Arg(key=arg.key, value=item, span=item.span) for item in arg.value.items]
    if not all([_in_range(ctx, family, param, constraint, float(n), at)
                for n, at in zip(numbers, located, strict=True)]):
        return None
    if size is not None and len(numbers) != size:
        unit, units = ("class", "classes") if family.event else ("dimension", "dimensions")
        ctx.error(arg.value.span, f"'{param}' lists {len(numbers)} numbers, but the node has {size} {units}: give "
                  f"one per {unit}.")
        return None
    if family.event and constraint == "unit" and abs(sum(numbers) - 1) > 1e-6:
        ctx.error(arg.value.span, f"'{param}' of {family.name} are the probabilities of its classes, which sum to 1, "
                  f"not {sum(numbers):g}.")
        return None
    return tuple(float(n) for n in numbers)


def _shape(ctx: Context, decl: s.NodeDecl, family) -> tuple[int | None, tuple[int, ...] | None]:
    """(size, shape): `[Z]` is a vector of Z values (shape None); `[C, H, W]` an image of
    C*H*W values, for a latent, observed or input node that is not time-indexed and whose
    family has independent values (a one-hot vector is one event: one size)."""
    name = decl.name.text
    if len(decl.shape) == 1:
        return ctx.integer(decl.shape[0], f"The size of '{name}'", family.min_size if family else 1), None
    dims = [ctx.integer(d, f"Dimension {i + 1} of '{name}'", 1) for i, d in enumerate(decl.shape)]
    span = Span.cover(decl.shape[0].span, decl.shape[-1].span)
    why = None
    if decl.kind == "deterministic":
        why = "a deterministic state is a vector (a student scales its size): give it one size"
    elif decl.time_var is not None:
        why = "a time-indexed node is a vector at each step: give it one size"
    elif family is not None and family.event:
        why = f"{family.name} values are one event over a vector: give it one size"
    if why:
        ctx.error(span, f"'{name}' cannot have the shape [{', '.join(d.text for d in decl.shape)}]: {why}.")
        return None, None
    if None in dims:
        return None, None
    shape = tuple(dims)
    return math.prod(shape), shape


def _in_range(ctx: Context, family, param: str, constraint: str, value: float, arg: s.Arg) -> bool:
    if constraint == "positive" and value <= 0:
        ctx.error(arg.value.span, f"'{param}' of {family.name} must be positive, not {value:g}.")
        return False
    if constraint == "unit" and not 0 <= value <= 1:
        ctx.error(arg.value.span, f"'{param}' of {family.name} is a probability, in [0, 1], not {value:g}.")
        return False
    return True


def _type_fits_kind(ctx: Context, decl: s.NodeDecl) -> bool:
    """Latent and observed nodes take a family; input nodes a domain; deterministic
    nodes the Real domain."""
    kind, type_name, span = decl.kind, decl.type.text, decl.type.span
    if kind in ("latent", "observed"):
        if type_name in FAMILIES:
            return True
        if type_name in NODE_DOMAINS:
            ctx.error(span, f"A {kind} node is random: give it a distribution family "
                      f"({', '.join(FAMILIES)}), not the domain '{type_name}'.")
        else:
            ctx.unknown("distribution family", decl.type, FAMILIES)
        return False
    allowed = NODE_DOMAINS if kind == "input" else DETERMINISTIC_TYPES
    if type_name in allowed:
        return True
    article = "An input" if kind == "input" else "A deterministic"
    why = "is given, not modelled" if kind == "input" else "is computed, not sampled"
    if type_name in FAMILIES:
        ctx.error(span, f"{article} node {why}: its type is {' or '.join(allowed)}, not the family '{type_name}'.")
    elif type_name in NODE_DOMAINS:
        ctx.error(span, f"{article} node {why}: its type is {' or '.join(allowed)}, not '{type_name}'.")
    else:
        ctx.error(span, f"Unknown type '{type_name}' for {article.lower()} node; it takes "
                  f"{' or '.join(allowed)}.{did_you_mean(type_name, allowed)}")
    return False


def _check_time_var(ctx: Context, decl: s.NodeDecl, time: ir.Time | None, has_time: bool, reported: bool) -> bool:
    """Whether the missing `time` statement has been reported (once, at the first
    time-indexed node, rather than at every one)."""
    var = decl.time_var
    if var is None:
        return reported
    if not has_time and not reported:
        ctx.error(var.span, f"'{decl.name.text}[{var.text}]' is time-indexed, but the model declares no "
                  f"time variable: add `time {var.text} in 1..T`.")
        return True
    if has_time and time is not None and var.text != time.var:
        ctx.error(var.span, f"Unknown time variable '{var.text}': the model's is '{time.var}'.")
    return reported
