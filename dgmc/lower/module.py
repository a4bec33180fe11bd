"""The compiled model: an ordinary `nn.Module` that executes the passes of `plan`.

    model = compile_model(ir_model)            # the teacher; width=0.25 for a student
    trace = model.sample(64)                   # ancestral sample: values, noise, params
    again = model.run(trace.noise, given={n: trace.values[n] for n in model.semi})
    post = model.infer(data)                   # latents from the guide, for the ELBO

A `Trace` holds, per node, its value, its noise (latent and observed nodes) and its
distribution parameters; time-indexed entries are stacked to [batch, steps, ...].

Each pass runs as generated Python (`generate`), one function per signature of a call
(which nodes are given, which noise), made on the first call with that signature.
`interpret.Run` interprets the same plan step by step: it is the reference the generated code is
tested against (`interpret = True` runs it instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from .. import ir
from ..families import Family, Params
from ..ir import order
from ..losses.methods import METHODS, semi_nodes
from ..losses.terms import guide_fed, guide_terms
from ..networks import NETWORKS, Shape, output_shape
from . import generate, generate_losses, runtime
from .generate import Signature
from .interpret import Run
from .plan import Pass, Step, generative_pass, inference_pass, sizes
from .text import compile_function
from .trace import MissingValueError, ShapeError, Trace


class CompiledModel(nn.Module):
    """A spec compiled to PyTorch: the teacher (`width=None`) or a student whose hidden
    widths and deterministic states are scaled by `width`."""

    interpret = False
    """Run the passes through the reference interpreter `interpret.Run`, and the objectives through
    their reference code, rather than generated code."""

    def __init__(self, model: ir.Model, width: float | None = None) -> None:
        super().__init__()
        self.ir = model
        self.width = width
        self.generative: Pass = generative_pass(model, width)
        self.inference: Pass | None = inference_pass(model, width)
        self.functions: dict[Signature, tuple[str, Callable[..., Trace]]] = {}
        """Generated source and function per signature, made on first use."""
        self._signatures: dict[tuple, Signature] = {}
        """A call's (pass, given keys, noise keys) -> its signature, worked out once."""
        self.losses: dict[tuple, tuple[str, Callable[..., dict[str, Tensor]]]] = {}
        """Generated source and function per objective (and per distillation's terms), made on first use."""
        self.semi: tuple[str, ...] = semi_nodes(model)
        self.initial_names = {n.name: model.initial_name(n.name) for n in model.initials()}
        """Node -> the name of its draw before the first step (`z` -> `z[0]`)."""
        self._fed: dict[str, tuple[str, ...]] = {}
        self._guided: dict[str, tuple[tuple, tuple[str, ...]]] = {}
        self.sizes = {**sizes(model, width), **{s.node: s.size for s in self.generative.steps}}
        self.families: dict[str, Family] = {s.node: s.family for s in self.generative.steps if s.family}
        self.steps = model.time.steps if model.time else 0
        self.nets = nn.ModuleDict()
        self._shared: dict[str, nn.Module] = {}
        """Each shared network's module, by name, once its first user built it."""
        self.free = nn.ParameterDict()
        self.inits = nn.ParameterDict()
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)
        self.guide_states: set[str] = order.guide_states(model)
        """Deterministic nodes only guides read (`order.guide_side`): their parameters are the guide's."""
        every = (*self.generative.steps, *(self.inference.steps if self.inference else ()))
        for step in every:
            self._build(step)
        self.kinds = {s.key: (s.family, s.spec) for s in every if s.role == "sample"}
        """Per sampled step: its family (settings bound) and parameter spec, as generated code reads them."""
        self.cells = {s.key: NETWORKS[s.net.name] for s in every
                      if s.role == "compute" and NETWORKS[s.net.name].recurrent}
        """Per recurrent step: its network kind, whose `step` runs the cell."""
        for node in model.nodes:
            if node.init == "learned":
                self.inits[node.name] = nn.Parameter(torch.zeros(self.sizes[node.name]))
        self.owners: dict[str, tuple[str, str]] = self._owners()

    def _owners(self) -> dict[str, tuple[str, str]]:
        """Each parameter's (node, role), decided here where the keys are made, so that
        nothing later parses parameter names: `nets.q_z1.0.weight` -> ("z1", "guide network").
        A name is looked up by its first two parts (a container and a key without dots)."""
        steps = (*self.generative.steps, *(self.inference.steps if self.inference else ()))
        where = {f"nets.{s.key}": (s.node, "guide network" if self._guide_step(s) else "network") for s in steps}
        where.update((f"free.{s.key}", (s.node, "free parameters")) for s in steps)
        where.update((f"inits.{name}", (name, "learned initial value")) for name in self.inits)
        where.update((f"free.p_{drawn}", (name, "initial distribution")) for name, drawn in self.initial_names.items())
        return {name: where[".".join(name.split(".", 2)[:2])] for name, _ in self.named_parameters()}

    def _guide_step(self, step: Step) -> bool:
        """A step whose network is the guide's: a latent's guide, or a state only guides read."""
        return step.key.startswith("q_") or step.node in self.guide_states

    def _build(self, step: Step) -> None:
        """The step's network (its computed parameters, or a deterministic state) and its
        free vector (its learned parameters)."""
        if step.role == "given" or step.key in self.nets or step.key in self.free:
            return
        if step.role == "compute":
            self._network(step, (step.size,))
            return
        computed = step.family.raw_size(step.size, step.spec.computed)
        if step.parents and computed:
            self._network(step, output_shape(self.ir.node(step.node).dims, computed))
        learned = step.family.raw_size(step.size, step.spec.learned)
        if learned:
            self.free[step.key] = nn.Parameter(torch.zeros(learned))

    def _network(self, step: Step, out: Shape) -> None:
        """`self.nets[step.key]`: built for output `out` and dry-run (a recurrent cell's own
        previous state is its state, not an input). A shared network (`network dec = ...`)
        is built by its first user; every later one holds the same module under its own
        key, so that generated code reads `self.nets[key]` alike and `parameters()` counts
        its weights once."""
        shared = step.net.shared
        if shared in self._shared:
            self.nets[step.key] = self._shared[shared]
            return
        kind = NETWORKS[step.net.name]
        if kind.recurrent:
            self.nets[step.key] = kind.build(step.net, self._cell_input_size(step), step.size)
        else:
            self.nets[step.key] = kind.make(step.net, self._input_shapes(step), out)
        self._dry_run(step, out)
        if shared:
            self._shared[shared] = self.nets[step.key]

    def _input_size(self, step: Step) -> int:
        return sum(self.sizes[r.node] for r in step.parents)

    def _cell_input_size(self, step: Step) -> int:
        """A recurrent cell's input: its parents but its own previous state."""
        return self._input_size(step) - self.sizes[step.node]

    def _dry_run(self, step: Step, out: Shape) -> None:
        """Run the step's new network once on zeros (two rows, eval mode: no dropout draw
        and no batch statistics touched) and refuse an output that is not the flat `out`
        the node needs: a column short would otherwise broadcast against the node's other
        parameters and train silently, and one too many fail deep in generated code.
        Checked once, here, so no training step pays for it."""
        net, rows = self.nets[step.key], 2
        training = net.training
        net.eval()
        try:
            with torch.no_grad():
                got = _shape_of(self._probe(step, net, rows))
        finally:
            net.train(training)
        if got != (rows, math.prod(out)):
            raise ShapeError(self._wrong_output(step, got, out))

    def _probe(self, step: Step, net: nn.Module, rows: int) -> object:
        """The network's output on zero inputs, fed as the passes feed it (a recurrent
        cell one step from a zero state, an empty input as one zero column)."""
        kind = NETWORKS[step.net.name]
        if kind.recurrent:
            inputs = torch.zeros(rows, self._cell_input_size(step) or 1)
            return kind.step(net, inputs, torch.zeros(rows, step.size), None)[0]
        return net(torch.zeros(rows, sum(math.prod(shape) for shape in self._input_shapes(step))))

    def _wrong_output(self, step: Step, got: tuple[int, ...] | str, out: Shape) -> str:
        """Names the node, the network and both shapes, where the spec writes the network."""
        node = self.ir.node(step.node)
        role = "guide network" if self._guide_step(step) else "network"
        student = "" if self.width is None else f", the student of width {self.width:g}"
        shown = got if isinstance(got, str) else f"[batch, {', '.join(map(str, got[1:]))}]"
        image = f" (the image [{', '.join(map(str, out))}] flattened)" if len(out) > 1 else ""
        what = f"its parameters {', '.join(step.spec.computed)}" if step.family is not None else "its value"
        return (f"The {role} {step.net.label()} of '{node.name}' (line {step.net.span.line}{student}) returns "
                f"{shown}, but '{node.name}' : {node.type_label(step.size)} needs [batch, {math.prod(out)}]{image} "
                f"for {what}.")

    def _input_shapes(self, step: Step) -> tuple[Shape, ...]:
        """The parents' shapes, in the order their values are concatenated (a student's
        deterministic states at its own size)."""
        return tuple(self.ir.node(r.node).shape or (self.sizes[r.node],) for r in step.parents)

    # -- public passes ------------------------------------------------------------------

    def sample(self, batch: int, inputs: Mapping[str, Tensor] | None = None,
               generator: torch.Generator | None = None, read: Collection[str] | None = None) -> Trace:
        """Ancestral sampling: fresh noise for every latent and observed node. With `read`,
        the caller reads only those nodes' values: a node no later step reads either
        still draws its noise and computes its parameters, but its value is not made (the
        trace has none)."""
        return self._walk("sample", self.generative, batch, dict(inputs or {}), {}, generator, read)

    def draw(self, batch: int, generator: torch.Generator | None = None, guide: bool = False
             ) -> dict[str, Tensor]:
        """The noise `sample` draws, drawn in its order from `generator` (the same stream):
        `run` on it gives `sample`'s trace. A distributed step draws the whole global
        batch's noise so and runs its share of the rows (`dgmc.scale.ddp`). With `guide`,
        the noise of the inference pass instead."""
        walk = self.inference if guide else self.generative
        if walk is None:
            raise MissingValueError(f"'{self.ir.name}' has no guide to infer latents with.")
        def one(step: Step) -> Tensor:
            eps = step.family.noise((batch, step.size), generator, self._anchor.device)
            return eps.to(self._anchor.dtype)

        noise: dict[str, Tensor] = {}
        for block in walk.blocks:
            sampled = [s for s in block.steps if s.role == "sample"]
            if not block.direction:
                noise.update((s.node, one(s)) for s in sampled)
                continue
            per_step: dict[str, list] = {s.node: [None] * self.steps for s in sampled}
            for t in block.times(self.steps):
                for step in sampled:
                    per_step[step.node][t] = one(step)
            noise.update((node, torch.stack(eps, 1)) for node, eps in per_step.items())
        return noise

    def run(self, noise: Mapping[str, Tensor], inputs: Mapping[str, Tensor] | None = None,
            given: Mapping[str, Tensor] | None = None, generator: torch.Generator | None = None,
            read: Collection[str] | None = None) -> Trace:
        """The generative pass on GIVEN noise; nodes in `given` take those values instead
        of computing them (observed nodes with children: the "semi" part; every node:
        each conditional fed the given parents, as local distillation does). `read` as
        for `sample`."""
        values = {**(inputs or {}), **(given or {})}
        return self._walk("run", self.generative, _batch(noise, values), values, dict(noise), generator, read)

    def infer(self, data: Mapping[str, Tensor], noise: Mapping[str, Tensor] | None = None,
              generator: torch.Generator | None = None) -> Trace:
        """The inference pass: observed and input nodes from `data`, latents sampled from
        the guide (or taken from `data` when present there)."""
        if self.inference is None:
            raise MissingValueError(f"'{self.ir.name}' has no guide to infer latents with.")
        return self._walk("infer", self.inference, _batch(noise or {}, data), dict(data), dict(noise or {}),
                          generator)

    def check_shapes(self, tensors: Mapping[str, Tensor], batch: int | None = None) -> None:
        """Refuse, naming the node, a value or noise whose shape is not the node's
        ([batch, size], or [batch, steps, size] for a time-indexed node), or a name
        that is no node's: caught here rather than as a matrix error deep in a network."""
        known = {s.node: s for s in (*self.generative.steps, *(self.inference.steps if self.inference else ()))}
        for name, tensor in tensors.items():
            if name not in known:
                raise ShapeError(f"'{name}' is not a node of '{self.ir.name}' (its nodes: "
                                        f"{', '.join(known)}).")
            step = known[name]
            expected = (batch if batch is not None else tensor.shape[0] if tensor.dim() else None,
                        *((self.steps,) if step.timed else ()), step.size)
            if tuple(tensor.shape) != expected:
                node = self.ir.node(name.split("[")[0])
                want = ", ".join("batch" if i == 0 and batch is None else str(d) for i, d in enumerate(expected))
                raise ShapeError(f"'{name}' has shape {tuple(tensor.shape)}, but it is {node.kind} "
                                        f"{node.type_label()}: expected ({want}).")
        batches = {t.shape[0] for t in tensors.values() if t.dim()}
        if len(batches) > 1:
            raise ShapeError(f"The given tensors disagree on the batch size: {sorted(batches)}.")

    def distribution(self, node: str, params: Params) -> Distribution:
        """The node's distribution from a trace's parameters (guide or model alike)."""
        return self.families[node].distribution(params)

    def log_prob(self, node: str, trace: Trace, value: Tensor | None = None) -> Tensor:
        """log density of `value` (default: the trace's own) per batch row, summed over
        the node's dimensions and its time steps."""
        value = trace.values[node] if value is None else value
        logp = self.distribution(node, trace.params[node]).log_prob(value)
        return logp.sum(-1) if logp.dim() > 1 else logp

    def fed(self, method: str) -> tuple[str, ...]:
        """The nodes whose values this model hands a student distilled by `method`,
        worked out once per method rather than on every distillation step."""
        if method not in self._fed:
            self._fed[method] = METHODS[method].feeds(self.ir)
        return self._fed[method]

    def guide_terms(self, method: str) -> tuple[tuple, tuple[str, ...]]:
        """The terms of this model's guide distilled by `method` and the teacher guide's
        latents it is fed (`losses.guide_terms`, `losses.guide_fed`), worked out once."""
        if method not in self._guided:
            self._guided[method] = (guide_terms(self.ir, method), guide_fed(self.ir, method))
        return self._guided[method]

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        """Per node: parameters of its conditional (`model`) and of its guide (`guide`)."""
        counts = {node.name: {"model": 0, "guide": 0} for node in self.ir.nodes}
        for name, parameter in self.named_parameters():
            counts[self.owners[name][0]]["guide" if self._in_guide(name) else "model"] += parameter.numel()
        return counts

    def _in_guide(self, name: str) -> bool:
        """Whether parameter `name` is the guide's: a guide network's, or any of a state
        only guides read (its network, its learned initial value)."""
        node, role = self.owners[name]
        return role == "guide network" or node in self.guide_states

    def generative_parameters(self) -> list[nn.Parameter]:
        """Everything but the guide: what distillation trains."""
        return [p for name, p in self.named_parameters() if not self._in_guide(name)]

    def guide_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if self._in_guide(name)]

    # -- execution ----------------------------------------------------------------------

    def _walk(self, name: str, walk: Pass, batch: int, given: dict[str, Tensor], noise: dict[str, Tensor],
              generator: torch.Generator | None, read: Collection[str] | None = None) -> Trace:
        if not self.interpret:
            key = (name, tuple(given), tuple(noise), read)  # a call site passes the same keys every step
            if key not in self._signatures:
                self._signatures[key] = self.signature(name, walk, given, noise, read)
            return self.function(self._signatures[key])(self, batch, given, noise, generator)
        return Run(self, batch, given, noise, generator).walk(walk, self.steps)

    def signature(self, name: str, walk: Pass, given: Mapping[str, Tensor], noise: Mapping[str, Tensor],
                  read: Collection[str] | None = None) -> Signature:
        """What a call supplies, as far as the pass reads it, and which sampled values
        nothing reads (with `read`, the values the caller reads); a value the pass needs
        and was not given is refused here, before anything runs."""
        for step in walk.steps:
            if step.role == "given" and step.node not in given:
                raise MissingValueError(f"'{step.node}' must be given (it is {self.ir.node(step.node).kind}).")
        nodes = {s.node for s in walk.steps}
        sampled = {s.node for s in walk.steps if s.role == "sample"}
        steps_read = {r.node for s in walk.steps for r in s.parents} | set(self.initial_names.values())
        unread = frozenset() if read is None else frozenset(sampled - set(given) - set(read) - steps_read)
        return Signature(name, frozenset(nodes & set(given)), frozenset(sampled & set(noise)), unread)

    def function(self, signature: Signature) -> Callable[..., Trace]:
        """The generated function of a call's signature (made on its first call)."""
        if signature not in self.functions:
            text = self.source(signature)
            function = compile_function(text, signature.name, signature.key(), runtime.NAMESPACE)
            self.functions[signature] = (text, function)
        return self.functions[signature][1]

    def loss_function(self, key: tuple) -> Callable[..., dict[str, Tensor]]:
        """The generated objective `key[0]` (`generate_losses.SOURCES`), specialised on
        `key[1:]`, made on first use."""
        if key not in self.losses:
            walk = self.inference if key[0] in generate_losses.ON_GUIDE else self.generative
            text = generate_losses.SOURCES[key[0]](self.ir, *key[1:], {s.node: s for s in walk.steps})
            self.losses[key] = (text, compile_function(text, key[0], f"{key[0]} {self.ir.name}",
                                                                runtime.NAMESPACE))
        return self.losses[key][1]

    def loss_source(self, key: tuple) -> str:
        """The text of the generated objective `key` (what `loss_function(key)` runs)."""
        self.loss_function(key)
        return self.losses[key][0]

    def elbo_parts(self, data: Mapping[str, Tensor], generator: torch.Generator | None = None,
                   noise: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """-log p of each observed node and KL(q || p) of each latent through the model's
        own guide, per row; the guide's noise drawn from `generator`, or given (`noise`:
        then the step holds no random op, as `torch.compile` wants it)."""
        return self.loss_function(("elbo_parts",))(self, data, generator, noise)

    def wake_sleep_parts(self, data: Mapping[str, Tensor], generator: torch.Generator | None = None
                         ) -> dict[str, Tensor]:
        """Each wake term (-log p on the guide's latents) and sleep term (-log q on a dream), batch means."""
        return self.loss_function(("wake_sleep_parts",))(self, data, generator)

    def mle_parts(self, data: Mapping[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """-log p of each observed node given the inputs, batch means."""
        return self.loss_function(("mle_parts",))(self, data, generator)

    def distill_loss(self, teacher: Trace, inputs: Mapping[str, Tensor], terms: tuple, fed: tuple[str, ...]
                     ) -> tuple[Tensor, dict[str, Tensor]]:
        """The distillation loss on the teacher's sample and its terms (detached, named
        `kind[node]`): `terms` are `losses.Term`s, `fed` the nodes the student is given."""
        return self.loss_function(distill_key(terms, fed))(self, teacher, inputs)

    def guide_distill_loss(self, teacher: Trace, data: Mapping[str, Tensor], terms: tuple, fed: tuple[str, ...]
                           ) -> tuple[Tensor, dict[str, Tensor]]:
        """The guide's distillation loss: the same terms on the inference graph, between
        the teacher's guide trace (on `data`) and this model's guide on its noise, fed the
        teacher's latents `fed`."""
        return self.loss_function(("guide_distill_loss", fed, terms))(self, teacher, data)

    def source(self, signature: Signature) -> str:
        """The Python source of a pass specialised on `signature`."""
        walk = self.inference if signature.name == "infer" else self.generative
        return generate.source(walk, signature, self.ir, self.steps, set(self.nets), set(self.free),
                               self.initial_names)

    def initial(self, node: str, batch: int) -> Tensor:
        """The value of a time-indexed node before the first step."""
        if node in self.inits:
            return self.inits[node].expand(batch, -1)
        init = self.ir.node(node).init
        return self._anchor.new_full((batch, self.sizes[node]), float(init or 0.0))


def distill_key(terms: tuple, fed: tuple[str, ...]) -> tuple:
    """What `distill_loss` is specialised on: the fed nodes and the terms."""
    return ("distill_loss", fed, terms)


def _shape_of(output: object) -> tuple[int, ...] | str:
    """A network output's shape, or what it is when it is not a tensor."""
    return tuple(output.shape) if isinstance(output, Tensor) else f"a {type(output).__name__}, not a tensor"


def _batch(*sources: Mapping[str, Tensor]) -> int:
    for source in sources:
        for tensor in source.values():
            return tensor.shape[0]
    raise MissingValueError("A pass on given noise needs at least one tensor to know the batch size.")


def compile_model(model: ir.Model, width: float | None = None) -> CompiledModel:
    """The teacher (`width=None`) or the student at `width`."""
    return CompiledModel(model, width)
