"""Drawing a model: graph IR -> graph description (a plain dict) -> `graphviz.Digraph`.

As in NumPyro's renderer, the middle step is a JSON-able dict (`graph_spec`) and the
Digraph is built from it alone, so tests check the drawing's content without images and
other tools (a web viewer) can draw the same graph.

Conventions (`NODE_STYLES`):

- latent: white ellipse; observed: gray-filled ellipse (the usual shaded "data" node);
- input: light-blue rounded box (given with the data, like a node of either kind but
  never modelled); deterministic: plain white box (a function, not a distribution);
- each label reads name (with `[t]` if time-indexed), type[size], network, then the
  fixed parameters (a root's learned ones as "free") and a recurrent node's initial value;
- time-indexed nodes sit in a plate labelled with the step range ("t = 1..40"); an edge
  that reads another step is dashed and labelled with it ("t-1", "t+1"); one that reads
  a fixed step of a sequence is labelled with the step ("40");
- guide edges are off by default; with `guide=True` they are dotted, in `GUIDE_COLOR`,
  and do not move the layout (graphviz `constraint=false`); the states only the guide
  computes (a backward RNN) are drawn with them, their edges as guide edges.

Heat (`dgmc render --run`, values from `dgmc.report.heat`): each node with a distillation term
gets a "heat" entry, a line "L = 0.0421" and a fill on a white-to-red scale (`HEAT_SCALE`)
that is relative: 0 is white, the largest value of the map the strongest red, the rest
linear in between (a negative estimate is clamped to white), so the map shows where the
student fails most, not how badly in absolute terms. Fill now encodes the term, so an
observed node is told from a latent one by its double border instead of its gray.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphviz

from ..core.errors import RenderError
from ..core.files import write_bytes
from ..ir import Model, Node, Parent, order
from ..networks import Network

if TYPE_CHECKING:
    from .heat import Heat

NODE_STYLES: dict[str, dict[str, str]] = {
    "latent": {"shape": "ellipse", "style": "solid", "fillcolor": "white"},
    "observed": {"shape": "ellipse", "style": "filled", "fillcolor": "gray"},
    "input": {"shape": "box", "style": "rounded,filled", "fillcolor": "lightblue"},
    "deterministic": {"shape": "box", "style": "solid", "fillcolor": "white"},
}
GUIDE_COLOR = "firebrick"
FONT = "Helvetica"  # sans-serif; graphviz falls back to any installed sans font
FORMATS = (".dot", ".svg", ".png", ".pdf")
# ColorBrewer's "Reds", from white: fraction 0 of the largest value .. 1, evenly spaced.
HEAT_SCALE = ("#ffffff", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d")
HEAT_LEGEND = "fill: L relative to the largest ({top}), white = 0; double border = observed"
INSTALL_HINT = "install graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS)"

Spec = dict[str, Any]


def graph_spec(model: Model, student_width: float | None = None, guide: bool = False,
               heat: Mapping[str, float] | None = None, caption: str | None = None) -> Spec:
    """The graph description: clusters, nodes, edges, all plain data.

    With `student_width`, teacher and student are drawn side by side in clusters
    "teacher" and "student (width w)", node ids prefixed `teacher.` / `student.` (a dot
    cannot occur in a spec name, so ids never collide); the student's networks are
    `model.student_net(name, w)` and its state sizes `model.student_size(name, w)`.
    `heat` (node name -> term) paints the nodes (the student's, side by side) as the
    module says; `caption` is a second line of the graph's label, saying what is shown.
    """
    spec: Spec = {"name": model.name, "label": model.name, "clusters": [], "nodes": [], "edges": []}
    if student_width is None:
        _add_model(spec, model, "", None, None, guide)
    else:
        student = f"student (width {student_width:g})"
        for tag, label, width in (("teacher", "teacher", None), ("student", student, student_width)):
            _add_cluster(spec, f"cluster_{tag}", label, None)
            _add_model(spec, model, tag, f"cluster_{tag}", width, guide and tag == "teacher")
    if caption:
        spec["label"] += f"\n{caption}"
    if heat is not None:
        _add_heat(spec, heat, "" if student_width is None else "student.")
    return spec


def _add_heat(spec: Spec, heat: Mapping[str, float], prefix: str) -> None:
    """Each node of `heat` (ids with `prefix`) gets its value, its fill and an "L =" line;
    the legend says the scale's top, as the colours alone are relative."""
    top = max((v for v in heat.values() if v > 0), default=0.0)
    values = {prefix + name: float(value) for name, value in heat.items()}
    for node in spec["nodes"]:
        if node["name"] not in values:
            continue
        value = values[node["name"]]
        fill = heat_color(value / top if top else 0.0)
        node.update(heat=value, label=f"{node['label']}\nL = {value:.3g}", style="filled", fillcolor=fill,
                    fontcolor="white" if _is_dark(fill) else "black",
                    peripheries=2 if node["kind"] == "observed" else 1)
    spec["label"] += "\n" + HEAT_LEGEND.format(top=f"{top:.3g}")


def heat_color(fraction: float) -> str:
    """The colour of `fraction` of the largest value (clamped to 0..1), interpolated
    linearly between the stops of `HEAT_SCALE`, as "#rrggbb"."""
    position = min(max(fraction, 0.0), 1.0) * (len(HEAT_SCALE) - 1)
    low = min(int(position), len(HEAT_SCALE) - 2)
    a, b = _rgb(HEAT_SCALE[low]), _rgb(HEAT_SCALE[low + 1])
    t = position - low
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _is_dark(color: str) -> bool:
    """Whether black text would be hard to read on `color` (its luma below one half)."""
    r, g, b = _rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b < 128


def _add_cluster(spec: Spec, name: str, label: str, parent: str | None) -> None:
    spec["clusters"].append({"name": name, "label": label, "parent": parent, "nodes": []})


def _add_model(spec: Spec, model: Model, tag: str, outer: str | None, width: float | None, guide: bool) -> None:
    """One copy of the model's nodes and edges (the teacher's, or with `width` the
    student's), inside cluster `outer` (if any); ids are prefixed with `tag.`. Only the
    teacher's copy gets guide edges: the IR has no student guide networks."""
    prefix = f"{tag}." if tag else ""
    time_cluster = None
    if model.time is not None and any(n.timed for n in model.nodes):
        time_cluster = "_".join(filter(None, ("cluster", tag, "time")))
        _add_cluster(spec, time_cluster, f"{model.time.var} = {model.time.first}..{model.time.last}", outer)
    clusters = {c["name"]: c for c in spec["clusters"]}
    guide_states = order.guide_states(model)  # drawn with the guide, in the guide's colour
    for name in model.order:
        if name in guide_states and not guide:
            continue
        node = model.node(name)
        cluster = time_cluster if node.timed else outer
        node_id = prefix + name
        if width is None:
            label = _label(model, node, node.net, node.size, guide)
        else:
            label = _label(model, node, model.student_net(name, width), model.student_size(name, width), guide)
        spec["nodes"].append({"name": node_id, "label": label, "kind": node.kind, **NODE_STYLES[node.kind],
                              "cluster": cluster})
        if cluster is not None:
            clusters[cluster]["nodes"].append(node_id)
        for parent in node.parents:
            spec["edges"].append(_edge(model, prefix, parent, node_id, name in guide_states))
        for parent in node.guide.parents if guide and node.guide else ():
            spec["edges"].append(_edge(model, prefix, parent, node_id, True))


def _edge(model: Model, prefix: str, parent: Parent, dst: str, guide: bool) -> Spec:
    """An edge, labelled with the step it reads when not the current one (`t-1`, `t+1`,
    or one fixed step such as `40`)."""
    var = model.time.var if model.time else "t"
    label = parent.ref(var)[len(parent.name) + 1:-1] if parent.lag or parent.at is not None else ""
    style = "dotted" if guide else ("dashed" if parent.lag else "solid")
    return {"src": prefix + parent.name, "dst": dst, "lag": parent.lag, "style": style, "label": label,
            "color": GUIDE_COLOR if guide else "black", "guide": guide}


def _label(model: Model, node: Node, net: Network | None, size: int, guide: bool) -> str:
    """Name, type[size], network, parameters, init and (with `guide`) the guide's
    network, one per line: what a reader needs to rebuild the conditional."""
    timed = node.timed and model.time is not None
    lines = [f"{node.name}[{model.time.var}]" if timed else node.name, node.type_label(size)]
    if net is not None:
        lines.append(net.label())
    if params := _params_label(node):
        lines.append(params)
    if node.init is not None and model.time is not None:
        lines.append(f"{model.initial_name(node.name)} = {_value(node.init)}")
    if node.initial is not None and model.time is not None:
        drawn = ", ".join(f"{k}={_value(v)}" for k, v in node.initial.items())
        lines.append(f"{model.initial_name(node.name)} ~ {node.type}({drawn})")
    if guide and node.guide is not None:
        lines.append(f"q: {node.guide.net.label() if node.guide.net else 'written out'}")
    return "\n".join(lines)


def _params_label(node: Node) -> str:
    """Fixed parameters as `loc=0, scale=1`; learned ones as free parameters ("free"
    alone when nothing is fixed, as for a root Bernoulli's logits); computed ones are
    the network's, shown on the edges."""
    fixed = [f"{k}={_value(v)}" for k, v in node.params.items() if v not in ("learned", "computed")]
    learned = [k for k, v in node.params.items() if v == "learned"]
    if not learned or node.family is None:
        return ", ".join(fixed)
    if not fixed and not node.parents:
        return "free"
    return ", ".join(fixed + [f"{k} free" for k in learned])


def _value(value: float | tuple[float, ...] | str) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f"{v:g}" for v in value) + "]"
    return value if isinstance(value, str) else f"{value:g}"


def to_digraph(model: Model, student: bool = False, guide: bool = False, heat: Heat | None = None
               ) -> graphviz.Digraph:
    """The model as a `graphviz.Digraph`; with `student`, teacher and student (at the
    spec's first width, or the heat's) side by side; with `guide`, the guide's edges too;
    with `heat`, the nodes painted by their distillation terms."""
    width = (heat.width if heat else _first_width(model)) if student else None
    if heat is None:
        return digraph_from_spec(graph_spec(model, width, guide))
    return digraph_from_spec(graph_spec(model, width, guide, heat.values, heat.caption))


def _first_width(model: Model) -> float:
    if not model.distill.widths:
        raise RenderError(f"model {model.name!r} names no student width")
    return model.distill.widths[0]


def digraph_from_spec(spec: Spec) -> graphviz.Digraph:
    """Build the Digraph from the description alone, so the two never disagree."""
    font = {"fontname": FONT}
    label = spec["label"].replace("\n", "\\n")
    graph = graphviz.Digraph(spec["name"], graph_attr={"label": label, "labelloc": "t", "fontsize": "16",
                                                       "nodesep": "0.6", "ranksep": "0.6", **font},
                             node_attr={"fontsize": "11", **font}, edge_attr={"fontsize": "10", **font})
    children: dict[str | None, list[Spec]] = {}
    for cluster in spec["clusters"]:
        children.setdefault(cluster["parent"], []).append(cluster)
    nodes = {n["name"]: n for n in spec["nodes"]}
    for node in spec["nodes"]:
        if node["cluster"] is None:
            _draw_node(graph, node)
    for cluster in children.get(None, []):
        _draw_cluster(graph, cluster, children, nodes)
    for edge in spec["edges"]:
        graph.edge(edge["src"], edge["dst"], **_edge_attrs(edge))
    return graph


def _edge_attrs(edge: Spec) -> dict[str, str]:
    """Only what differs from graphviz's defaults, so the DOT source stays readable."""
    attrs = {"label": edge["label"], "style": edge["style"]}
    if edge["guide"]:
        attrs.update(color=edge["color"], fontcolor=edge["color"], constraint="false")
    return {k: v for k, v in attrs.items() if v and v != "solid"}


def _draw_cluster(graph: graphviz.Digraph, cluster: Spec, children: dict[str | None, list[Spec]],
                  nodes: dict[str, Spec]) -> None:
    """A time plate is labelled at its bottom right, as plates usually are; a
    teacher/student box at its top."""
    plate = cluster["name"].endswith("_time")
    attrs = {"labeljust": "r", "labelloc": "b", "style": "solid"} if plate else {"labelloc": "t", "style": "rounded"}
    with graph.subgraph(name=cluster["name"]) as sub:
        sub.attr(label=cluster["label"], **attrs)
        for name in cluster["nodes"]:
            _draw_node(sub, nodes[name])
        for child in children.get(cluster["name"], []):
            _draw_cluster(sub, child, children, nodes)


def _draw_node(graph: graphviz.Digraph, node: Spec) -> None:
    """The look of the description; a heated node's text colour and border count too."""
    extra = {k: str(node[k]) for k in ("fontcolor", "peripheries") if k in node}
    graph.node(node["name"], label=node["label"].replace("\n", "\\n"), shape=node["shape"],
               style=node["style"], fillcolor=node["fillcolor"], **extra)


def render_file(model: Model, out: Path, student: bool = False, guide: bool = False,
                heat: Heat | None = None) -> Path:
    """Write the drawing to `out` (.dot source, or .svg/.png/.pdf through graphviz's
    `dot`) and return the path written. The DOT source is always written first, next to
    `out`, so a machine without `dot` still gets something to render elsewhere."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise RenderError(f"cannot render to '{out}': unknown suffix {out.suffix or '(none)'!r}; "
                          f"use one of {', '.join(FORMATS)}")
    digraph = to_digraph(model, student, guide, heat)
    source = out.with_suffix(".dot")
    write_bytes(source, digraph.source.encode())
    if suffix == ".dot":
        return source
    missing = f"graphviz's `dot` program was not found; the DOT source was written to '{source}'. " \
              f"To draw it, {INSTALL_HINT}"
    if shutil.which("dot") is None:
        raise RenderError(missing)
    try:
        data = digraph.pipe(format=suffix[1:])
    except graphviz.ExecutableNotFound as error:
        raise RenderError(missing) from error
    except graphviz.CalledProcessError as error:
        detail = (error.stderr or b"").decode(errors="replace").strip()
        raise RenderError(f"`dot` failed on '{source}': {detail or error}") from error
    write_bytes(out, data)
    return out

