"""Conditionals written out: `x[t] ~ Normal(loc = sqrt(1 - B) * x[t-1], scale = sqrt(B))`,
in the model or in a guide block. Such a conditional has no network: each parameter it
gives is an expression of numbers, constants and nodes, and the nodes its expressions read
are its parents (an edge statement into the node would be a second definition). A
parameter it leaves out keeps the declaration's value (a number or `learned`); in the
guide, which has no declaration of its own, it gives them all. A part of an expression
that reads no node is folded to a number here, so a parameter that reads none is a fixed
one, exactly as if the declaration had fixed it.
"""

from __future__ import annotations

import math

from .. import ir
from ..families import FAMILIES, Family, param_spec
from ..frontend import syntax as s
from .context import LEARNED, Context, stmts_of
from .edges import _connect, _parent, _target
from .nodes import UNSET, Draft

_FOLD = {"sqrt": math.sqrt, "exp": math.exp, "log": math.log, "tanh": math.tanh, "abs": abs,
         "sigmoid": lambda x: 1 / (1 + math.exp(-x)), "softplus": lambda x: math.log1p(math.exp(x))}
_OPERATE = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


def add_conditionals(ctx: Context, spec: s.Spec, drafts: dict[str, Draft], time: ir.Time | None) -> None:
    """Each `~` statement onto its node: its expressions (`Draft.exprs`, `guide_exprs`),
    its parents, and in the model the parameters it fixes."""
    for stmt in stmts_of(spec, s.CondStmt):
        _add(ctx, stmt, drafts, time, guide=False)
    for block in stmts_of(spec, s.GuideBlock):
        for stmt in block.conds:
            _add(ctx, stmt, drafts, time, guide=True)


def _add(ctx: Context, stmt: s.CondStmt, drafts: dict[str, Draft], time: ir.Time | None, guide: bool) -> None:
    target = _target(ctx, stmt.target, drafts, time, guide)
    if target is None:
        return
    family = FAMILIES.get(target.type) if target.kind in ("latent", "observed") else None
    if family is None:
        if target.kind not in ("latent", "observed"):
            ctx.error(stmt.target.span, f"'{target.name}' is {target.kind}: only latent and observed nodes have a "
                      "distribution to write out.")
        return
    if stmt.family.text != target.type:
        ctx.error(stmt.family.span, f"'{target.name}' is declared {target.type}: write its conditional as "
                  f"{target.type}(...), not {stmt.family.text}(...).")
        return
    if (target.guide_cond if guide else target.cond) is not None:
        first = (target.guide_cond if guide else target.cond).span.line
        ctx.error(stmt.span, f"The {'guide of' if guide else 'conditional of'} '{target.name}' is already written "
                  f"out on line {first}.")
        return
    exprs = _parameters(ctx, stmt, family, drafts, time)
    if exprs is None:
        return
    if guide:
        target.guide_cond = stmt
    else:
        target.cond = stmt
    _bind(ctx, stmt, target, family, exprs, drafts, guide)


def _parameters(ctx: Context, stmt: s.CondStmt, family: Family, drafts: dict[str, Draft],
                time: ir.Time | None) -> dict[str, ir.Expr] | None:
    """Each parameter the statement gives, by the family's own name, as an IR expression
    (None where one fails: its errors are reported)."""
    found: dict[str, ir.Expr] = {}
    failed = False
    for arg in stmt.args:
        key = arg.key.text
        if key not in family.params:
            own = ", ".join(family.params)
            ctx.error(arg.key.span, f"{family.name} has no parameter '{key}' to write out: its parameters are {own}"
                      + (" (a setting is fixed in the declaration)." if key in family.settings else "."))
            failed = True
            continue
        if key in found:
            ctx.error(arg.key.span, f"'{key}' is given twice.")
            failed = True
            continue
        expr = _expr(ctx, arg.value, drafts, time)
        if expr is None:
            failed = True
        else:
            found[key] = expr
    return None if failed else found


def _bind(ctx: Context, stmt: s.CondStmt, target: Draft, family: Family, exprs: dict[str, ir.Expr],
          drafts: dict[str, Draft], guide: bool) -> None:
    """The parameters onto the node, the parents they read onto its edges; a parameter the
    statement leaves out must be fixed or learned by the declaration (in the model)."""
    parents = target.guide_parents if guide else target.parents
    if parents or (target.guide_via if guide else target.via) is not None:
        ctx.error(stmt.span, f"'{target.name}' has edges into it {'in the guide ' if guide else ''}(line "
                  f"{(parents[0].span if parents else target.via.span).line}) and a written-out conditional: its "
                  "parents are the nodes its parameters read, so remove those edges.")
        return
    declared = param_spec(family, {k: v for k, v in target.params.items() if v != UNSET})
    for param in family.params:
        if not guide and param in exprs and (param in declared.fixed or param in declared.learned):
            ctx.error(stmt.span, f"'{param}' of '{target.name}' is given by its declaration and by this statement: "
                      "give it once.")
        elif param not in exprs and (guide or (param not in declared.fixed and param not in declared.learned)):
            where = "" if guide else f", or fix it in the declaration ({param} = 1, or {param} = {LEARNED})"
            ctx.error(stmt.span, f"This conditional of '{target.name}' gives no {param}: give it here{where}.")
    _check_sizes(ctx, target, exprs, drafts)
    reads = [p for e in exprs.values() for p in e.reads()]
    for parent in {p.key: p for p in reads}.values():
        _connect(ctx, target, parent, drafts, guide)
    constant = {k: e.value for k, e in exprs.items() if e.op == "number"}
    if guide:
        target.guide_exprs = exprs
        return
    own = {family.fix(k, 0.5)[0]: k for k in target.params}  # the declaration's name of each parameter
    for param in exprs:
        target.params.pop(own.get(param, param), None)
        target.params[param] = constant.get(param, "expression")
        if param in constant and not _in_range(family, param, constant[param]):
            ctx.error(stmt.span, f"'{param}' of '{target.name}' comes to {constant[param]:g}, outside its range "
                      f"({family.constraints[param]}).")
    target.exprs = {k: e for k, e in exprs.items() if k not in constant}


def _in_range(family: Family, param: str, value: float) -> bool:
    constraint = family.constraints.get(param)
    return {"positive": value > 0, "unit": 0 < value < 1}.get(constraint, math.isfinite(value))


def _check_sizes(ctx: Context, target: Draft, exprs: dict[str, ir.Expr], drafts: dict[str, Draft]) -> None:
    """Every node an expression reads has one value (broadcast over the target's
    dimensions) or one per dimension of the target."""
    for param, expr in exprs.items():
        for parent in expr.reads():
            size = drafts[parent.name].size
            if None not in (size, target.size) and size not in (1, target.size):
                ctx.error(parent.span, f"'{parent.name}' has {size} values, but '{param}' of '{target.name}' needs "
                          f"one or {target.size} (one per dimension).")


def _expr(ctx: Context, expr: s.Expr, drafts: dict[str, Draft], time: ir.Time | None) -> ir.Expr | None:
    """The syntax expression as IR: constants substituted, parts that read no node folded."""
    if isinstance(expr, s.Number):
        return ir.Expr(op="number", value=float(expr.value))
    if isinstance(expr, s.Ref):
        if expr.index is None and expr.name.text in ctx.consts:
            return ir.Expr(op="number", value=float(ctx.consts[expr.name.text]))
        parent = _parent(ctx, expr, drafts, time)
        return None if parent is None else ir.Expr(op="read", parent=parent)
    if isinstance(expr, s.Call):
        if expr.func.text not in ir.FUNCTIONS:
            ctx.unknown("function", expr.func, ir.FUNCTIONS)
            return None
        args = [_expr(ctx, expr.arg, drafts, time)]
        op = expr.func.text
    elif isinstance(expr, s.Neg):
        args, op = [_expr(ctx, expr.operand, drafts, time)], "neg"
    else:
        args, op = [_expr(ctx, expr.left, drafts, time), _expr(ctx, expr.right, drafts, time)], expr.op
    if None in args:
        return None
    if all(a.op == "number" for a in args):
        return _folded(ctx, expr, op, [a.value for a in args])
    return ir.Expr(op=op, args=tuple(args))


def _folded(ctx: Context, expr: s.Expr, op: str, values: list[float]) -> ir.Expr | None:
    """An operation on numbers, done now; an undefined one (log 0, 1 / 0) is an error."""
    try:
        if op == "neg":
            value = -values[0]
        elif op in _OPERATE:
            value = _OPERATE[op](*values)
        else:
            value = _FOLD[op](values[0])
    except (ValueError, ZeroDivisionError, OverflowError):
        value = math.nan
    if not math.isfinite(value):
        ctx.error(expr.span, "This comes to no finite number.")
        return None
    return ir.Expr(op="number", value=float(value))
