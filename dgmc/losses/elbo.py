"""The ELBO's latent terms: where a latent's closed-form KL is its part of the ELBO, and
where only the Monte Carlo term on the guide's sample is.

The ELBO is E_q[log p(x, z) - log q(z | x)], one term log q(z_i | u_i) - log p(z_i | pa_i)
per latent (u_i its guide parents, pa_i its generative parents). Integrating z_i out in
closed form, KL(q(z_i | u_i) || p(z_i | pa_i)), is the same expectation only when pa_i is
held fixed while z_i varies: when no generative parent of z_i is computed, in the guide,
from z_i. A bottom-up guide (x -> z1 -> z2) with a top-down model (z2 -> z1 -> x) breaks
that for z1: its generative parent z2 is drawn from z1, and the closed form, holding a z2
that depends on z1, is a biased estimate of the ELBO. Such a latent gets the unbiased
one-sample term log q(z_i | u_i) - log p(z_i | pa_i) on the guide's sample instead.

Over time the question is asked of the unrolled graph: is the parent at its step (z[t-1]
for p(z[t] | z[t-1])) computed, in the guide, from z[t]? A filtering guide never does
that (it reads only earlier steps); a guide that runs a chain backward (q(z[t] | z[t+1]))
against a forward model does, and gets the Monte Carlo term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import networkx as nx

from .. import ir
from ..families import FAMILIES
from ..ir import order


@dataclass(frozen=True)
class LatentTerm:
    """How the ELBO scores one latent."""

    node: str
    closed: bool
    """The closed-form KL may stand for the term (no generative parent drawn from the node)."""
    drawn_from: tuple[str, ...] = ()
    """The generative parents the guide computes from the node (why `closed` is False)."""
    summed: Literal["", "guide", "model"] = ""
    """Summed over its values (`train elbo(enumerate = [...])`) instead of sampled:
    weighted by its guide's probabilities (`guide`), or out of the model, having no guide
    (`model`). Either way its term is scored at each value, never in closed form."""


def latent_terms(model: ir.Model) -> dict[str, LatentTerm]:
    """Per latent (in the model's order), whether its closed-form KL is valid in the ELBO,
    or whether it is summed out. Every latent not summed out has a guide."""
    names = [n.name for n in model.nodes]
    inference = order.build(names, order.inference_edges(model))
    summed = model.train.enumerate if model.train else ()
    terms = {}
    for name in model.order:
        node = model.node(name)
        if node.kind != "latent":
            continue
        if name in summed:
            terms[name] = LatentTerm(name, closed=False, summed="guide" if node.guide else "model")
            continue
        drawn_from = drawn_from_in_guide(model, inference, node)
        terms[name] = LatentTerm(name, closed=not drawn_from, drawn_from=drawn_from)
    return terms


def drawn_from_in_guide(model: ir.Model, inference: nx.MultiDiGraph, node: ir.Node) -> tuple[str, ...]:
    """The generative parents of `node` that the guide computes from it, each at the step
    the node reads it: a walk from node[t] through the inference graph unrolled over time
    (an edge `p[t-k] -> c[t]` leads from p at step s to c at step s+k; a static node reads
    every step of a sequence it summarises, and every step reads a static node). The
    window of steps is wide enough for any path between two steps the node reads."""
    timed = {n.name: n.timed for n in model.nodes}
    reach = max((abs(p.lag) for n in model.nodes for p in n.parents), default=0) + 1
    window = 4 * reach * (len(model.nodes) + 1)
    start = (node.name, 0 if node.timed else None)
    seen, queue = {start}, [start]
    while queue:
        name, step = queue.pop()
        for child, links in inference.succ[name].items():
            for lag in links:
                if not timed[child]:
                    nexts = [(child, None)]
                elif step is None:  # a static value feeds every step
                    nexts = [(child, s) for s in range(-window, window + 1)]
                else:
                    nexts = [(child, step + lag)] if abs(step + lag) <= window else []
                for found in nexts:
                    if found not in seen:
                        seen.add(found)
                        queue.append(found)
    return tuple(dict.fromkeys(
        p.name for p in node.parents
        if (p.name, None if not timed[p.name] or p.at is not None else -p.lag) in seen
        or (p.at is not None and any(name == p.name for name, _ in seen))))


def describe(model: ir.Model) -> str:
    """The ELBO's terms as `dgmc compile --emit losses` prints them: one line per observed
    and latent node, each latent marked closed form or Monte Carlo, and why."""
    chain = model.summed_chain()
    read = {n.name for n in model.of_kind("observed") if any(p.name == chain for p in n.parents)}
    lines = [f"# {model.name}: the ELBO (the `elbo` objective, and the test -ELBO reported for teachers "
             "and students)", "-ELBO = " + " + ".join(
                 [f"nll[{n.name}]" for n in model.of_kind("observed") if n.name not in read] +
                 [f"{'sum' if n.name == chain else 'kl'}[{n.name}]" for n in model.of_kind("latent")]), ""]
    width = max(len(n.name) for n in model.nodes) + 5
    for node in model.of_kind("observed"):
        if node.name not in read:
            lines.append(f"{f'nll[{node.name}]':<{width}} = -log {_conditional('p', node.name, node.parents)} "
                         "on the guide's sample")
    for name, term in latent_terms(model).items():
        node = model.node(name)
        p = _conditional("p", name, node.parents)
        q = _conditional("q", name, node.guide.parents) if node.guide else ""
        if term.summed == "guide":
            text = f"log {q} - log {p} at each value of {name}, weighted by {q}  summed out exactly"
        elif term.summed == "model" and node.timed:
            observed = f" p({', '.join(sorted(read))} | {name})" if read else ""
            lines.append(f"{f'sum[{name}]':<{width}} = -log sum over every path of {name} of p({name}){observed}  "
                         "summed out of the model along the chain (the forward algorithm)")
            continue
        elif term.summed == "model":
            text = (f"-log {p} at each value of {name}, combined as -log sum over {name}'s values of exp(log p(..))  "
                    "summed out of the model (no guide)")
        elif term.closed:
            how = "closed form" if "kl" in FAMILIES[node.type].closed else \
                "closed form where torch has one for the pair, else the one-sample estimate"
            text = f"KL({q} || {p})  {how}"
        else:
            text = (f"log {q} - log {p} on the guide's sample  Monte Carlo: the guide draws "
                    f"{', '.join(term.drawn_from)} from {name}, so the closed form would be biased")
        lines.append(f"{f'kl[{name}]':<{width}} = {text}")
    return "\n".join(lines) + "\n"


def _conditional(letter: str, name: str, parents: tuple[ir.Parent, ...]) -> str:
    """`p(z1 | z2, h[t-1])`, or `p(z1)` without parents."""
    given = ", ".join(p.ref() for p in parents)
    return f"{letter}({name} | {given})" if given else f"{letter}({name})"
