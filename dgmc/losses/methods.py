"""Distillation methods, registered like every other concept (`METHODS`): what a method
feeds the student and how it weighs the generated terms, read by the checker (names),
the loss (`dgmc.losses`), distillation (`dgmc.distillation`) and the command line.

- ours: the student runs on the teacher's noise; observed nodes that have children are
  teacher-forced (the semi-auxiliary form); latent terms weighted by lambda.
- local: every conditional of the student is fed the teacher's parent values; every term
  weighted 1 (the sum over nodes of local distillation).
- scratch: no distillation; the student is trained on the data with the teacher's
  objective (the baseline that needs data).
- staged: local for a first share of the steps (the spec's `stage`, `--stage`), then
  ours: local's quick per-node start, then ours' end-to-end fidelity. Not in a spec's
  default methods (name it in `method = [...]`): measured on the depth sweep, the
  Helmholtz machine and the two-level conv VAE (docs/RESULTS.md), it did not beat ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import ir
from ..core.registry import Registry
from ..ir import order


def semi_nodes(model: ir.Model) -> tuple[str, ...]:
    """Observed nodes with children: in the semi-auxiliary form their values are not
    reparametrized but handed over (teacher forcing). A state only the guide reads is not
    the model's child (`order.guide_states`)."""
    guide_states = order.guide_states(model)
    parents = {p.name for n in model.nodes if n.name not in guide_states for p in n.parents}
    return tuple(n.name for n in model.nodes if n.kind == "observed" and n.name in parents)


def random_nodes(model: ir.Model) -> tuple[str, ...]:
    """Every random value: latent and observed nodes, and draws before the first step."""
    drawn = tuple(model.initial_name(n.name) for n in model.initials())
    return drawn + tuple(n.name for n in model.of_kind("latent", "observed"))


@dataclass(frozen=True)
class Method:
    name: str
    doc: str
    distills: bool
    """False: trained on data with the teacher's objective, no distillation terms."""
    weighs_latents: bool = False
    """Latent terms weighted by lambda (each of the spec's lambdas is a run)."""
    feeds: Callable[[ir.Model], tuple[str, ...]] = semi_nodes
    """The nodes whose teacher values the student is given instead of computing them."""
    fed: str = ""
    """How the student is fed, in words (`dgmc compile --emit losses`)."""
    given: str = "| eps"
    """What each term conditions on, as the loss formula writes it."""
    phases: tuple[str, ...] = ()
    """Methods run in turn instead (`staged`): the first for the spec's `stage` share of
    the steps, the second for the rest."""
    default: bool = True
    """Among the methods a spec runs when it names none."""
    contender: bool = False
    """The report asks whether it beats the run's other methods: each one that is no
    contender, and each contender registered before it (staged against ours; ours
    against staged would say the same the other way round)."""

    @property
    def lambda_throughout(self) -> bool:
        """Its latent terms weigh lambda on every step (no phase of another method that
        weighs them 1): at lambda 0 nothing trains a discrete latent's conditional."""
        return self.weighs_latents and not self.phases


def needs_data(method: str, model: ir.Model) -> str | None:
    """Why `method` needs the data to distill `model` (None: the teacher's checkpoint is
    all it needs). `scratch` trains on the data; any method draws a conditional model's
    input nodes from it."""
    if not METHODS[method].distills:
        return "trains on data"
    if model.of_kind("input"):
        return "draws its input nodes from the data"
    return None


METHODS: Registry[Method] = Registry("method")
for _method in (
    Method("ours", "the unified loss: one term per latent and observed node on shared noise", distills=True,
           weighs_latents=True, feeds=semi_nodes,
           fed="student run on the teacher's noise eps; observed nodes with children teacher-forced", contender=True),
    Method("local", "local distillation of every conditional, fed the teacher's parents", distills=True,
           feeds=random_nodes, fed="each student conditional fed the teacher's parent values",
           given="| teacher's parents"),
    Method("scratch", "no distillation: the student trained on the data with the teacher's objective",
           distills=False),
    Method("staged", "local for the spec's `stage` share of the steps, then ours", distills=True,
           weighs_latents=True, feeds=semi_nodes, fed="local (each conditional fed the teacher's parents), then ours",
           phases=("local", "ours"), default=False, contender=True),
):
    METHODS.register(_method.name, _method, origin="dgmc")
