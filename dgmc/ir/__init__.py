"""Graph IR: the checked meaning of a spec, the typed graph that every later stage walks.

A `Model` is a closed set of `Node`s of four kinds (`NODE_KINDS`), each holding its own
conditional: type, size, fixed parameters, parents (with time lags), network, guide. All
names are resolved, constants substituted, defaults filled in, and `order` is a
deterministic topological order; `dgmc.ir.order.lint` re-checks these invariants. Nothing
here is a Python object graph: nodes refer to each other by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import PrivateAttr

from ..core.base import Frozen, Span
from ..families import FAMILIES, Family
from ..networks import NETWORKS, Network, scale_hidden

NodeKind = Literal["input", "latent", "observed", "deterministic"]

NODE_KINDS: dict[str, str] = {
    "input": "given with the data, never modelled (a class label, a covariate); no parents",
    "latent": "hidden random variable with a family; sampled, inferred by the guide",
    "observed": "random variable with a family that the data supplies when training",
    "deterministic": "a plain function of its parents (an RNN state); no noise",
}

Param = float | tuple[float, ...] | Literal["learned", "computed", "expression"]
"""A family parameter: fixed by the spec (a number, also a family's settings such as a
temperature), `learned` (a free parameter that does not depend on the parents: the
default of a node without parents), `computed` by the node's network from its parents
(the default of a node with parents), or an `expression` of its parents (`Node.exprs`)."""


class Parent(Frozen):
    """An edge into a node: from `name` at the same step (`lag` 0), `lag` steps before
    (`h[t-2]`: 2) or after (`g[t+1]`: -1); or, into a node without a time dimension,
    from one fixed step `at` of a sequence (`h[T]`: the step number as the spec counts,
    lag 0), which needs the whole sequence computed first."""

    name: str
    lag: int = 0
    at: int | None = None
    span: Span

    @property
    def key(self) -> tuple[str, int, int | None]:
        """What the edge reads, wherever it is written: (name, lag, at)."""
        return self.name, self.lag, self.at

    def ref(self, var: str = "t") -> str:
        """The parent as the spec writes it: `h`, `h[t-1]`, `g[t+1]`, `h[40]`."""
        if self.at is not None:
            return f"{self.name}[{self.at}]"
        return f"{self.name}[{var}{-self.lag:+d}]" if self.lag else self.name


FUNCTIONS = ("sqrt", "exp", "log", "sigmoid", "softplus", "tanh", "abs")
"""The functions an expression may call, each of one argument, elementwise."""
OPERATORS = ("+", "-", "*", "/")


class Expr(Frozen):
    """An expression of a parameter-free conditional (`x ~ Normal(loc = sqrt(1 - B) * z,
    scale = 0.1)`), a closed set of operations: `number` (its `value`), `read` (the value
    of `parent`), an operator of `OPERATORS` on two `args`, `neg`, or a function of
    `FUNCTIONS` on one. Constants are substituted and every part without a read folded to
    a number by the checker, so an operation always has a tensor among its operands."""

    op: str
    args: tuple[Expr, ...] = ()
    value: float | None = None
    parent: Parent | None = None

    def reads(self) -> tuple[Parent, ...]:
        """The parents it reads, in order of appearance (repeats kept once)."""
        if self.parent is not None:
            return (self.parent,)
        found: dict[tuple, Parent] = {}
        for arg in self.args:
            for parent in arg.reads():
                found.setdefault(parent.key, parent)
        return tuple(found.values())

    def code(self, read: Callable[[Parent], str]) -> str:
        """Python source computing it with torch, each parent's value by `read`; fully
        parenthesised, so that the text needs no precedence rules."""
        if self.op == "number":
            return repr(self.value)
        if self.op == "read":
            return read(self.parent)
        if self.op in OPERATORS:
            return f"({self.args[0].code(read)} {self.op} {self.args[1].code(read)})"
        if self.op == "neg":
            return f"(-{self.args[0].code(read)})"
        where = "torch.nn.functional" if self.op == "softplus" else "torch"
        return f"{where}.{self.op}({self.args[0].code(read)})"

    def text(self, var: str = "t") -> str:
        """As a spec writes it (fully parenthesised), for pictures and summaries."""
        return self.code(lambda p: p.ref(var)).replace("torch.nn.functional.", "").replace("torch.", "")


class Guide(Frozen):
    """The inference network's conditional q(node | parents) for a latent node: computed
    by `net`, or written out, every parameter an expression of the parents (`exprs`, and
    then no net)."""

    parents: tuple[Parent, ...]
    net: Network | None = None
    exprs: dict[str, Expr] = {}
    span: Span


class Node(Frozen):
    """One node of the graph and its conditional p(node | parents).

    `type` is a family name (latent, observed) or a domain name (input: Real, Binary,
    OneHot; deterministic: Real). `net` is None exactly for inputs, for nodes with no
    parents and for those whose conditional is written out (`exprs`). `init` is the value
    before the first step, for time-indexed nodes that some edge reads at `t-1` (a
    number, or `learned`); a latent node may instead have an
    `initial` distribution, of its own family, whose parameters are numbers or `learned`
    (the value before the first step is then a sample, with its own noise). `shape` holds
    the dimensions of a node declared with several (`[1, 28, 28]`, channels first); every
    stage keeps its `size` values flat, and networks for images read the shapes.
    """

    name: str
    kind: NodeKind
    type: str
    size: int
    shape: tuple[int, ...] | None = None
    params: dict[str, Param] = {}
    timed: bool = False
    init: Param | None = None
    initial: dict[str, Param] | None = None
    parents: tuple[Parent, ...] = ()
    net: Network | None = None
    exprs: dict[str, Expr] = {}
    """The parameters its conditional gives as expressions of its parents (`x ~ Normal(loc =
    ...)`), by the family's own names; such a node has no network."""
    guide: Guide | None = None
    span: Span

    @property
    def dims(self) -> tuple[int, ...]:
        """The node's dimensions: its shape, or (size,) for a vector."""
        return self.shape or (self.size,)

    def type_label(self, size: int | None = None) -> str:
        """`Normal[8]`, `Bernoulli[1, 28, 28]`: as the spec declares it (a student's
        deterministic state at its own `size`)."""
        return f"{self.type}[{', '.join(map(str, self.shape or (size or self.size,)))}]"

    @property
    def family(self) -> Family | None:
        return FAMILIES.get(self.type) if self.kind in ("latent", "observed") else None


class Time(Frozen):
    """`time t in first..last`: the step variable of the time-indexed nodes."""

    var: str
    first: int
    last: int
    span: Span

    @property
    def steps(self) -> int:
        return self.last - self.first + 1


class Binding(Frozen):
    """The columns that feed one node, side by side, and the transform they go through
    (`dgmc.datasets.transforms`) with its arguments."""

    node: str
    columns: tuple[str, ...]
    transform: str | None = None
    args: dict[str, float] = {}
    span: Span

    @property
    def label(self) -> str:
        """The columns as a person reads them: `pixels`, `eruptions+waiting`."""
        return "+".join(self.columns)


FILE_DATASET = "file"
"""`data file { ... }`: the rows come from the file given with `--data PATH`."""


class Data(Frozen):
    """The dataset, its preprocessing, and which columns feed which node. A spec names a
    registered dataset or `file`; for `file`, `source` is the path given with `--data`
    and `digest` its content hash (neither is written in the spec)."""

    dataset: str
    flags: tuple[str, ...] = ()
    classes: tuple[int, ...] | None = None
    test_fraction: float = 0.2
    labelled: float = 1.0
    """The share of the training rows that keep their class labels (a registered
    dataset's one-hot columns); the others lose them, for semi-supervised learning."""
    bindings: dict[str, Binding] = {}
    source: str | None = None
    digest: str | None = None
    span: Span

    @property
    def columns(self) -> dict[str, str]:
        """Node -> the label of the columns that feed it."""
        return {node: binding.label for node, binding in self.bindings.items()}


class Train(Frozen):
    """The teacher's recipe: objective (`elbo`, `iwae`, `wake_sleep`, `mle`) and optimiser; for
    `elbo`, the KL warm-up steps and the free-bits floor (nats per latent dimension),
    both against posterior collapse, and the discrete latents it sums out exactly
    (`enumerate`) instead of sampling them."""

    objective: str
    steps: int
    batch: int
    lr: float
    warmup: int = 0
    free_bits: float = 0.0
    beta: float = 1.0
    """A constant weight on the KL terms (beta-VAE, Higgins et al. 2017), times the warm-up's
    ramp where there is one."""
    k: int = 1
    """The draws per row of `iwae`'s importance-weighted bound."""
    aux: float = 1.0
    """The weight of the auxiliary predictors' -log q(value | ...) of observed nodes with a
    guide (CEVAE's q(t | x) and q(y | x, t), Louizos et al. 2017)."""
    alpha: float = 0.0
    """The weight of -log q(y | ...) on the rows where a latent bound to data is present
    (M2's classification term, Kingma et al. 2014); 0: none."""
    weight_decay: float
    enumerate: tuple[str, ...] = ()
    """Discrete latents the ELBO sums over every joint value of: weighted by the guide's
    probabilities where the latent has a guide, out of the model where it has none."""
    span: Span


class Distill(Frozen):
    """The distillation: student widths, lambdas (each a run of `ours`), methods, seeds,
    optimiser, the divergence of every latent and observed node, and explicit student
    networks where given."""

    widths: tuple[float, ...]
    lambdas: tuple[float, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int
    batch: int
    lr: float
    weight_decay: float
    divergences: dict[str, str]
    student_nets: dict[str, Network] = {}
    stage: float = 0.5
    """The share of a `staged` distillation's steps spent on local before ours."""
    revive: int = 100
    """Every this many steps, a distilled student's dead ReLU units are revived
    (`dgmc.distillation.revive`); 0: never. On by default: on specs/hm.dgm it turned the 2 collapsed
    seeds of 10 into students that match the teacher (docs/RESULTS.md, hm_no_revive)."""
    span: Span


class Model(Frozen):
    """A checked spec. `nodes` are in declaration order; `order` is the topological
    order over same-step edges, ties broken by declaration order."""

    name: str
    consts: dict[str, int | float] = {}
    time: Time | None = None
    nodes: tuple[Node, ...]
    order: tuple[str, ...]
    data: Data | None = None
    train: Train | None = None
    distill: Distill
    span: Span

    _by_name: dict[str, Node] = PrivateAttr(default_factory=dict)
    _missable: frozenset[str] = PrivateAttr(default=frozenset())
    _source: tuple[str, str] | None = PrivateAttr(default=None)

    @property
    def source_text(self) -> tuple[str, str] | None:
        """(text, file name) of the spec this model was checked from, when known: later
        stages locate their errors in it (a data file that does not fit a binding)."""
        return self._source

    def model_post_init(self, context: object) -> None:
        self._by_name.update((n.name, n) for n in self.nodes)
        read = {p.name for n in self.nodes for p in n.parents}
        self._missable = frozenset(n.name for n in self.nodes if (n.kind == "latent" and n.guide is not None)
                                   or (n.kind == "observed" and n.name not in read))

    def node(self, name: str) -> Node:
        return self._by_name[name]

    def has(self, name: str) -> bool:
        return name in self._by_name

    def of_kind(self, *kinds: NodeKind) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind in kinds)

    def bound_latents(self) -> tuple[str, ...]:
        """Latents bound to data (with a guide): observed in the rows that hold their
        value, inferred in the rows that miss it (the labels of semi-supervised M2)."""
        bound = self.data.bindings if self.data else {}
        return tuple(n.name for n in self.of_kind("latent") if n.name in bound)

    def may_miss(self, name: str) -> bool:
        """Whether a node bound to data may lack its value in some rows: a latent with a
        guide (inferred there), or an observed node that no other node of the model reads
        (its likelihood term is dropped there, which is exact: nothing depends on it; a
        guide that reads it reads 0 there, the value masked out). Worked out once: every
        ELBO step asks."""
        return name in self._missable

    def summed_out(self) -> tuple[str, ...]:
        """The latents the ELBO sums out of the model (`train elbo(enumerate = ...)` on a
        latent without a guide): no guide infers them."""
        summed = self.train.enumerate if self.train else ()
        return tuple(n.name for n in self.of_kind("latent") if n.name in summed and n.guide is None)

    def summed_chain(self) -> str | None:
        """The latent chain over time the ELBO sums out by the forward algorithm, if any
        (the checker allows one, alone in `enumerate`)."""
        summed = self.summed_out()
        return summed[0] if summed and self.node(summed[0]).timed else None

    def has_elbo(self) -> bool:
        """Latent nodes, each inferred by a guide or summed out of the model: the ELBO is
        defined (what `elbo` trains and every latent-variable model reports)."""
        latents, summed = self.of_kind("latent"), self.summed_out()
        return bool(latents) and all(n.guide is not None or n.name in summed for n in latents)

    def fully_guided(self) -> bool:
        """The ELBO is defined (every latent guided or summed out of the model) and at
        least one latent has a guide to run: what a student's guide, and an ELBO through
        another model's guide, need."""
        return self.has_elbo() and any(n.guide is not None for n in self.of_kind("latent"))

    def reads_ahead(self, name: str) -> bool:
        """Whether edges read the node at later steps (`z[t+1]`) rather than earlier ones:
        its chain runs backward in time, and its value beyond the sequence (its `init`
        value or draw) stands after the last step (the checker allows one side per
        node with an initial distribution)."""
        lags = [p.lag for n in self.nodes for p in (*n.parents, *(n.guide.parents if n.guide else ()))
                if p.name == name and p.at is None and p.lag]
        return bool(lags) and all(lag < 0 for lag in lags)

    def initial_name(self, name: str) -> str:
        """How the draw beyond the sequence of a node with an `initial` distribution is
        named in traces, noise and losses: `z[0]` for `time t in 1..T`, or `z[T+1]`
        for a chain read at `t+1` (run backward)."""
        assert self.time is not None, name
        return f"{name}[{self.time.last + 1 if self.reads_ahead(name) else self.time.first - 1}]"

    def initials(self) -> tuple[Node, ...]:
        """The nodes whose value before the first step is drawn from a distribution."""
        return tuple(n for n in self.nodes if n.initial is not None)

    def student_size(self, name: str, width: float) -> int:
        """A node's size in the student. Deterministic states (an RNN's `h`) are hidden
        units, so they scale with `width` like hidden layers; every other node keeps its
        size, since teacher and student are compared, or fed data, there."""
        node = self.node(name)
        if node.kind != "deterministic":
            return node.size
        return scale_hidden((node.size,), width)[0]

    def student_net(self, name: str, width: float) -> Network | None:
        """The student's network for a node: the explicit one from the distill block, or
        the teacher's with hidden widths scaled by `width`."""
        explicit = self.distill.student_nets.get(name)
        if explicit is not None:
            return explicit
        net = self.node(name).net
        if net is None:
            return None
        return NETWORKS[net.name].student(net, width)
