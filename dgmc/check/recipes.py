"""The training recipe (`train`) and the distillation (`distill`), with their defaults.

Defaults follow the paper where it says: Adam with weight decay 1e-4
everywhere; distillation reuses the teacher's steps, batch and learning rate.
"""

from __future__ import annotations

import math

from .. import ir
from ..core.base import NOWHERE
from ..families import FAMILIES
from ..frontend import syntax as s
from ..losses.divergences import DIVERGENCES
from ..losses.methods import METHODS
from ..networks import NETWORKS
from ..training.objectives import OBJECTIVES
from .context import LEARNED, Context, scalars, single, stmts_of
from .edges import DEFAULT_NET_NAME, network
from .nodes import Draft

OPTIMISER = ("steps", "batch", "lr", "weight_decay")
WEIGHTS = {
    "free_bits": (False, "free_bits is a floor in nats per latent dimension"),
    "beta": (True, "beta weighs the KL terms"),
    "alpha": (False, "alpha weighs the guide's log-probability of the values the data give"),
    "aux": (False, "aux weighs the auxiliary predictors' log-probability of the observed values"),
}
"""The recipe's numeric options: whether each must be > 0 (else >= 0), and what it is."""
DEFAULTS = {"steps": 2000, "batch": 128, "lr": 1e-3, "weight_decay": 1e-4, "warmup": 0}


def check_train(ctx: Context, spec: s.Spec, drafts: dict[str, Draft], has_data: bool) -> ir.Train | None:
    stmt = single(ctx, spec, s.TrainStmt, "train")
    if stmt is None:
        return None
    if not has_data:
        ctx.error(stmt.span, "The teacher is trained on data: add a `data` statement.")
    objective = stmt.objective.text
    if objective not in OBJECTIVES:
        ctx.unknown("objective", stmt.objective, OBJECTIVES)
        return None
    allowed = OPTIMISER + OBJECTIVES[objective].options
    args = ctx.keyword_args(stmt.args, allowed, f"train {objective}")
    values = _optimiser(ctx, args, DEFAULTS)
    if "warmup" in args:
        values["warmup"] = ctx.integer(args["warmup"].value, "warmup", 0) or 0
    if "k" in args:
        values["k"] = ctx.integer(args["k"].value, "k, the draws per row,", 1) or 1
    for name, (positive, what) in WEIGHTS.items():
        value = ctx.number(args[name].value, name) if name in args else None
        if value is not None and (value <= 0 if positive else value < 0):
            ctx.error(args[name].value.span, f"{what}, so {'>' if positive else '>='} 0, not {value:g}.")
        elif value is not None:
            values[name] = float(value)
    listing = args["enumerate"].value if "enumerate" in args else s.ListValue(items=(), span=stmt.span)
    summed = _enumerated(ctx, args["enumerate"], drafts) if "enumerate" in args else ()
    listed = {v.text for v in scalars(listing) if isinstance(v, s.Name)}
    _objective_fits(ctx, stmt, drafts, listed)  # a name refused above is not also reported as unguided
    return ir.Train(objective=objective, span=stmt.span, enumerate=summed, **values)


def check_bound(ctx: Context, spec: s.Spec, drafts: dict[str, Draft], data: ir.Data | None,
                train: ir.Train | None) -> None:
    """A latent bound to data is observed where its value is present and inferred where it
    is missing: `elbo` sums it out there under its guide (`enumerate`, a discrete one: the
    objective's own rule) or draws it from its guide (a continuous one); `alpha` weighs the
    guide's log-probability of the present values, so it needs such a latent."""
    bound = [n for n in (data.bindings if data else {}) if drafts[n].kind == "latent"]
    stmts = stmts_of(spec, s.TrainStmt)
    stmt = stmts[0] if stmts else None
    for name in bound:
        span = data.bindings[name].span
        if train is None or not OBJECTIVES[train.objective].infers_bound:
            fits = " or ".join(o.name for o in OBJECTIVES.values() if o.infers_bound)
            ctx.error(span, f"'{name}' is a latent bound to data: train with {fits}, which infers it where the "
                      "data miss it.")
    predicted = [d.name for d in drafts.values() if d.kind == "observed" and d.guided]
    aux = next((a for a in (stmt.args if stmt else ()) if a.key is not None and a.key.text == "aux"), None)
    if aux is not None and not predicted:
        ctx.error(aux.span, "aux weighs the auxiliary predictors (guide edges into observed nodes), but the guide "
                  "predicts no observed node.")
    if train is not None and train.alpha and not bound and stmt is not None:
        arg = next(a for a in stmt.args if a.key is not None and a.key.text == "alpha")
        ctx.error(arg.span, "alpha weighs the guide's log-probability of a latent's values where the data give "
                  "them, but no latent is bound to data.")


MAX_CONFIGURATIONS = 1024
"""The most joint values `enumerate` sums over: each one is a copy of the batch."""


def _enumerated(ctx: Context, arg: s.Arg, drafts: dict[str, Draft]) -> tuple[str, ...]:
    """The latents of `enumerate = [c, ...]`: discrete with a finite support, and either
    untimed with few enough joint values to run the batch once per value, or one chain
    over time alone (summed step by step: each step's values count, not the paths')."""
    names = _list(ctx, arg, lambda v: _summable(ctx, v, drafts)) or ()
    chains = [n for n in names if drafts[n].decl.time_var is not None]
    counted = [n for n in names if n not in chains] or chains  # a chain alone: its values at one step
    sizes = [FAMILIES[drafts[n].type].support_size(drafts[n].size) for n in counted
             if drafts[n].size is not None and drafts[n].type in FAMILIES]
    if math.prod(sizes) > MAX_CONFIGURATIONS:
        counts = " x ".join(map(str, sizes)) + " = " if len(sizes) > 1 else ""
        each = "value at each step" if counted == chains else "joint value"
        ctx.error(arg.value.span, f"Summing out {', '.join(counted)} runs the batch once per {each}: {counts}"
                  f"{math.prod(sizes):,} of them, more than {MAX_CONFIGURATIONS:,}: sum fewer latents out, or train "
                  "the rest with wake_sleep or a relaxed family.")
    if chains and len(names) > 1:
        ctx.error(arg.value.span, f"'{chains[0]}' is a chain over time, summed out step by step on its own: "
                  "sum it out alone.")
        return ()
    if chains and not _chain_fits(ctx, arg, drafts[chains[0]], drafts):
        return ()
    outside = [n for n in names if not drafts[n].guided]
    readers = {d.name: [p.name for p in d.guide_parents if p.name in outside] for d in drafts.values()}
    read = list(dict.fromkeys(n for names_read in readers.values() for n in names_read))
    if read:
        one = len(read) == 1
        guides = ", ".join(d for d, r in readers.items() if r)
        ctx.error(arg.value.span, f"{', '.join(read)} {'is' if one else 'are'} summed out of the model (no guide), "
                  f"so no guide can read {'it' if one else 'them'}, but the guide of {guides} does: give "
                  f"{'it a guide' if one else 'them guides'}, or read the data instead.")
        return ()
    return names


def _summable(ctx: Context, value: s.Value, drafts: dict[str, Draft]) -> str | None:
    if not isinstance(value, s.Name) or value.text not in drafts:
        if isinstance(value, s.Name):
            ctx.unknown("node", value, drafts, listed=False)
        else:
            ctx.error(value.span, "enumerate lists latent nodes by name.")
        return None
    draft = drafts[value.text]
    family = FAMILIES.get(draft.type)
    if draft.kind != "latent":
        ctx.error(value.span, f"'{draft.name}' is {draft.kind}: only a latent node can be summed out.")
    elif family is not None and (not family.discrete or family.support_size(draft.size or 1) is None):
        why = "is not discrete" if not family.discrete else "has no finite set of values"
        ctx.error(value.span, f"'{draft.name}' is {draft.type}, which {why}: only Bernoulli, Categorical and "
                  "other finite discrete families can be summed out.")
    else:
        return draft.name
    return None


def _chain_fits(ctx: Context, arg: s.Arg, chain: Draft, drafts: dict[str, Draft]) -> bool:
    """A chain s[t] is summed out of the model by the forward algorithm, which needs its
    every value at a step to be scored by the next step's transition and this step's
    observations alone: no guide, and nothing reads s but s[t+1] and observed nodes at t."""
    if chain.guided:
        ctx.error(arg.value.span, f"'{chain.name}' is a chain over time with a guide: a chain is summed out of the "
                  "model (the forward algorithm), so give it no guide.")
        return False
    other = next((p for p in chain.parents if p.name == chain.name and p.lag != 1), None)
    if other is not None:
        ctx.error(other.span, f"'{chain.name}' reads {other.ref(ctx.time_var)}: the forward algorithm sums a chain "
                  f"over its previous step alone, {chain.name}[{ctx.time_var}-1].")
        return False
    readers = [(d, p) for d in drafts.values() for p in (*d.parents, *d.guide_parents) if p.name == chain.name]
    wrong = [d.name for d, p in readers
             if not ((d is chain and p.lag == 1) or (d.kind == "observed" and d.decl.time_var is not None
                                                    and p.lag == 0 and p in d.parents))]
    if wrong:
        ctx.error(arg.value.span, f"'{chain.name}' is read by {', '.join(dict.fromkeys(wrong))}: a chain is summed "
                  f"out step by step only when nothing reads it but its own next step and observed nodes of the "
                  "same step.")
        return False
    return True


def _objective_fits(ctx: Context, stmt: s.TrainStmt, drafts: dict[str, Draft], summed: set[str]) -> None:
    objective = OBJECTIVES[stmt.objective.text]
    latents = [d for d in drafts.values() if d.kind == "latent"]
    others = [o.name for o in OBJECTIVES.values() if o.latents]
    if not objective.latents:
        for draft in latents:
            ctx.error(draft.decl.name.span, f"{objective.name} fits models without latents, but '{draft.name}' is "
                      f"latent: train with {' or '.join(others)}.")
        return
    if not latents:
        plain = [o.name for o in OBJECTIVES.values() if not o.latents]
        ctx.error(stmt.objective.span, f"{objective.name} needs latent nodes; this model has none: use "
                  f"{' or '.join(plain)}.")
    for draft in latents:
        family = FAMILIES.get(draft.type)
        if not objective.discrete_latents and family is not None and family.discrete and draft.name not in summed:
            fits = [o.name for o in OBJECTIVES.values() if o.latents and o.discrete_latents]
            summable = "enumerate" in objective.options
            ctx.error(draft.decl.type.span, f"{objective.name} reparametrizes latents, but '{draft.name}' is "
                      f"{draft.type} (discrete): " + (f"sum it out (`enumerate = [{draft.name}]`), or " if summable
                                                      else "") + f"train with {' or '.join(fits)}.")
        if not draft.guided and draft.name not in summed:
            ctx.error(draft.decl.name.span, f"Latent '{draft.name}' has no guide, which {objective.name} "
                      f"needs: add an edge `... -> {draft.name}` inside `guide {{ }}`.")
        if draft.initial and LEARNED in draft.initial.values() and not objective.learns_initial:
            fits = [o.name for o in OBJECTIVES.values() if o.latents and o.learns_initial
                    and (o.discrete_latents or not (family and family.discrete))]
            ctx.error(draft.init_stmt.span, f"{objective.name} cannot learn the initial distribution of "
                      f"'{draft.name}' (the guide draws the value before the first step from it, so nothing "
                      f"fits it to the data): fix its parameters" + (f", or train with {' or '.join(fits)}."
                                                                      if fits else "."))


SETTINGS = ("width", "lambda", "method", "seed", "stage", "revive")
"""The distillation settings a command or a call may give in place of the spec's
(`dgmc.check.overrides`): each read by the one rule below, wherever it was written."""
GRID_DEFAULTS = {"widths": (0.25,), "lambdas": (1.0,), "seeds": (0,)}


def check_distill(ctx: Context, spec: s.Spec, drafts: dict[str, Draft], train: ir.Train | None) -> ir.Distill:
    stmt = single(ctx, spec, s.DistillStmt, "distill") or s.DistillStmt(args=(), items=(), span=NOWHERE)
    args = ctx.keyword_args(stmt.args, (*SETTINGS, *OPTIMISER), "distill")
    inherited = {k: getattr(train, k) for k in OPTIMISER} if train else DEFAULTS
    divergences, student_nets = _items(ctx, stmt, drafts)
    defaults = {**GRID_DEFAULTS, "methods": tuple(m for m in METHODS if METHODS[m].default)}
    return ir.Distill(**{**defaults, **distill_settings(ctx, args)}, divergences=divergences,
                      student_nets=student_nets, span=stmt.span, **_optimiser(ctx, args, inherited))


def distill_settings(ctx: Context, args: dict[str, s.Arg]) -> dict:
    """The `ir.Distill` fields of the settings (`SETTINGS`) that `args` give and that
    check; an absent or refused one is left out (its default applies)."""
    readers = {
        "width": ("widths", lambda arg: _list(ctx, arg, lambda v: ctx.positive(v, "A width"))),
        "lambda": ("lambdas", lambda arg: _list(ctx, arg, lambda v: _lambda(ctx, v))),
        "method": ("methods", lambda arg: _list(ctx, arg, lambda v: _method(ctx, v))),
        "seed": ("seeds", lambda arg: _list(ctx, arg, lambda v: ctx.integer(v, "A seed", 0))),
        "stage": ("stage", lambda arg: _stage(ctx, arg)),
        "revive": ("revive", lambda arg: _revive(ctx, arg)),
    }
    found = {}
    for key, (field, read) in readers.items():
        value = read(args[key]) if key in args else None
        if value is not None:
            found[field] = value
    return found


def _stage(ctx: Context, arg: s.Arg) -> float | None:
    """`stage = F`: the share of a staged distillation spent on local, in (0, 1)."""
    share = ctx.number(arg.value, arg.key.text)
    if share is not None and not 0 < share < 1:
        ctx.error(arg.value.span, f"{arg.key.text} is the share of the steps spent on local before ours, between 0 "
                                  f"and 1 (exclusive), not {share:g}.")
        return None
    return None if share is None else float(share)


def _revive(ctx: Context, arg: s.Arg) -> int | None:
    """`revive = N`: the steps between two revivals of dead units, 0 for none."""
    return ctx.integer(arg.value, arg.key.text, 0)


def _items(
    ctx: Context, stmt: s.DistillStmt, drafts: dict[str, Draft]
) -> tuple[dict[str, str], dict[str, ir.Network]]:
    divergences = {d.name: FAMILIES[d.type].default_divergence
                   for d in drafts.values() if d.kind in ("latent", "observed") and d.type in FAMILIES}
    given: dict[str, s.DistillItem] = {}
    student_nets: dict[str, ir.Network] = {}
    for item in stmt.items:
        draft = drafts.get(item.node.text)
        if draft is None:
            ctx.unknown("node", item.node, drafts, listed=False)
            continue
        if item.divergence is None and item.via is None:
            ctx.error(item.span, f"This item says nothing about '{draft.name}': give a divergence "
                      f"({draft.name} : kl) or a student network ({draft.name} via mlp(8)).")
        divergence = item.divergence
        if divergence and _divergence_fits(ctx, divergence, draft) and _once(ctx, given, item, "divergence"):
            divergences[draft.name] = divergence.text
        if item.via is not None and draft.cond is not None:
            ctx.error(item.via.span, f"'{draft.name}' has its conditional written out (line {draft.cond.span.line}), "
                      "with no network, in the student as in the teacher: give it no network.")
        elif item.via is not None and draft.net is not None and draft.net.shared:
            ctx.error(item.via.span, f"'{draft.name}' computes with the shared network '{draft.net.shared}', which "
                      "the student shares too, sized by its width: give it no network of its own.")
        elif item.via is not None:
            net = _student_net(ctx, item.via, draft)
            if net is not None and _once(ctx, given, item, "via"):
                student_nets[draft.name] = net
    return divergences, student_nets


def _once(ctx: Context, given: dict[str, s.DistillItem], item: s.DistillItem, part: str) -> bool:
    key = f"{item.node.text}.{part}"
    if key in given:
        what = "divergence" if part == "divergence" else "student network"
        ctx.error(item.span, f"The {what} of '{item.node.text}' is already given on line {given[key].span.line}.")
        return False
    given[key] = item
    return True


def _divergence_fits(ctx: Context, name: s.Name, draft: Draft) -> bool:
    if draft.kind not in ("latent", "observed"):
        ctx.error(name.span, f"'{draft.name}' is {draft.kind}: it has no distillation term, so no divergence.")
        return False
    if name.text not in DIVERGENCES:
        ctx.unknown("divergence", name, DIVERGENCES)
        return False
    family = FAMILIES.get(draft.type)
    if family is not None and name.text not in family.divergences:
        ctx.error(name.span, f"The divergence {name.text} does not fit '{draft.name}', which is "
                  f"{family.name}: use one of {', '.join(family.divergences)}.")
        return False
    return True


def _student_net(ctx: Context, via: s.Network, draft: Draft) -> ir.Network | None:
    if not draft.parents or draft.kind == "input":
        ctx.error(via.span, f"'{draft.name}' has no parents, so no network for the student to resize.")
        return None
    net = network(ctx, via)
    teacher = draft.net.name if draft.net else DEFAULT_NET_NAME
    if net is not None and NETWORKS[net.name].recurrent != NETWORKS[teacher].recurrent:
        ctx.error(via.span, f"The student's network for '{draft.name}' must be of the teacher's kind "
                  f"({'a recurrent cell' if NETWORKS[teacher].recurrent else 'mlp or linear'}).")
        return None
    return net


def _optimiser(ctx: Context, args: dict[str, s.Arg], defaults: dict) -> dict:
    values = {k: defaults[k] for k in OPTIMISER}
    for key in ("steps", "batch"):
        if key in args:
            values[key] = ctx.integer(args[key].value, key, 1) or defaults[key]
    if "lr" in args:
        values["lr"] = ctx.positive(args["lr"].value, "lr") or defaults["lr"]
    if "weight_decay" in args:
        decay = ctx.number(args["weight_decay"].value, "weight_decay")
        if decay is not None and decay < 0:
            ctx.error(args["weight_decay"].value.span, "weight_decay must be >= 0.")
        elif decay is not None:
            values["weight_decay"] = float(decay)
    return values


def _lambda(ctx: Context, value: s.Value) -> float | None:
    number = ctx.number(value, "lambda")
    if number is not None and number < 0:
        ctx.error(value.span, f"lambda weighs the latent terms and must be >= 0, not {number:g}.")
        return None
    return None if number is None else float(number)


def _method(ctx: Context, value: s.Value) -> str | None:
    if isinstance(value, s.Name) and value.text in METHODS:
        return value.text
    if isinstance(value, s.Name):
        ctx.unknown("method", value, METHODS)
    else:
        ctx.error(value.span, f"A method is one of {', '.join(METHODS)}.")
    return None


def _list(ctx: Context, arg: s.Arg, read) -> tuple | None:
    """A value or a list of values, each read by `read`; duplicates are errors. None
    when nothing is read (the default applies)."""
    if isinstance(arg.value, s.ListValue) and not arg.value.items:
        ctx.error(arg.value.span, f"'{arg.key.text}' lists nothing: give at least one value, or leave it out "
                  "for the default.")
        return None
    out: list = []
    for item in scalars(arg.value):
        value = read(item)
        if value is not None and value in out:
            ctx.error(item.span, f"'{arg.key.text}' lists {value} twice.")
        elif value is not None:
            out.append(value)
    return tuple(out) or None
