"""The renderer: the graph description (a dict) is checked directly, without images;
one test draws a real SVG with graphviz's `dot`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import dgmc
from dgmc.cli import main
from dgmc.ir import Model
from dgmc.ir.order import guide_states, model_edges
from dgmc.report.heat import load_heat
from dgmc.report.render import (
    GUIDE_COLOR,
    HEAT_SCALE,
    NODE_STYLES,
    RenderError,
    graph_spec,
    heat_color,
    render_file,
    to_digraph,
)

SPECS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "specs").glob("*.dgm"))
Loader = Callable[[str], Model]


@pytest.fixture
def root() -> Path:
    """The repository root, wherever pytest runs from."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def load(root: Path) -> Loader:
    """Load a shipped spec by name (`load("vrnn")` is specs/vrnn.dgm)."""
    return lambda name: dgmc.load(root / "specs" / f"{name}.dgm")


def by_name(spec: dict) -> dict[str, dict]:
    return {n["name"]: n for n in spec["nodes"]}


def test_specs_are_shipped() -> None:
    assert {"classifier", "cvae", "hm", "hvae", "vae", "vrnn"} <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_every_node_has_its_kind_and_look(load: Loader, name: str) -> None:
    model = load(name)
    nodes = by_name(graph_spec(model, guide=True))
    assert set(nodes) == {n.name for n in model.nodes}
    for node in model.nodes:
        drawn = nodes[node.name]
        assert drawn["kind"] == node.kind
        assert {k: drawn[k] for k in ("shape", "style", "fillcolor")} == NODE_STYLES[node.kind]
        assert drawn["label"].split("\n")[1] == f"{node.type}[{', '.join(map(str, node.dims))}]"
        assert drawn["cluster"] == ("cluster_time" if node.timed else None)


def test_the_four_kinds_look_different() -> None:
    looks = {tuple(sorted(style.items())) for style in NODE_STYLES.values()}
    assert len(looks) == 4
    assert NODE_STYLES["latent"]["shape"] == NODE_STYLES["observed"]["shape"] == "ellipse"
    assert NODE_STYLES["observed"]["style"] == "filled" and NODE_STYLES["latent"]["fillcolor"] == "white"
    assert NODE_STYLES["deterministic"]["shape"] == "box"


@pytest.mark.parametrize("name", SPECS)
def test_edges_are_the_generative_parents(load: Loader, name: str) -> None:
    model = load(name)
    spec = graph_spec(model)
    states = guide_states(model)  # drawn only with the guide
    model_only = [e for e in model_edges(model) if e[1] not in states]
    assert sorted((e["src"], e["dst"], e["lag"]) for e in spec["edges"]) == sorted(model_only)
    for edge in spec["edges"]:
        assert not edge["guide"]
        if edge["lag"]:
            assert edge["style"] == "dashed"
            assert edge["label"] == (f"t-{edge['lag']}" if edge["lag"] > 0 else f"t+{-edge['lag']}")
        else:
            assert (edge["style"], edge["label"]) == ("solid", "")


@pytest.mark.parametrize("name", SPECS)
def test_description_is_plain_json_and_deterministic(load: Loader, name: str) -> None:
    model = load(name)
    spec = graph_spec(model, student_width=0.5, guide=True)
    assert json.loads(json.dumps(spec)) == spec
    assert graph_spec(model, student_width=0.5, guide=True) == spec


def test_vrnn_has_a_time_plate_and_previous_step_edges(load: Loader) -> None:
    spec = graph_spec(load("vrnn"))
    assert spec["clusters"] == [
        {"name": "cluster_time", "label": "t = 1..40", "parent": None, "nodes": ["z", "x", "h"]}
    ]
    lagged = {(e["src"], e["dst"]) for e in spec["edges"] if e["lag"] == 1}
    assert lagged == {("h", "z"), ("h", "x"), ("h", "h")}
    assert by_name(spec)["h"]["label"] == "h[t]\nReal[64]\ngru\nh[0] = 0"


def test_untimed_models_have_no_clusters(load: Loader) -> None:
    assert graph_spec(load("vae"))["clusters"] == []


def test_labels_show_network_and_parameters(load: Loader) -> None:
    vae = by_name(graph_spec(load("vae")))
    assert vae["z"]["label"] == "z\nNormal[16]\nloc=0, scale=1"
    assert vae["x"]["label"] == "x\nBernoulli[64]\nmlp(256, 256)"
    hm = by_name(graph_spec(load("hm")))
    assert hm["z4"]["label"] == "z4\nBernoulli[2]\nfree"
    assert hm["y2"]["label"] == "y2\nNormal[1]\nmlp(8)\nscale=0.5"
    assert by_name(graph_spec(load("cvae")))["c"]["label"] == "c\nOneHot[10]"


def test_guide_edges_only_when_asked(load: Loader) -> None:
    model = load("vrnn")
    spec = graph_spec(model, guide=True)
    guide = [e for e in spec["edges"] if e["guide"]]
    assert sorted((e["src"], e["dst"], e["lag"]) for e in guide) == sorted(model_edges(model, guide=True))
    assert all(e["style"] == "dotted" and e["color"] == GUIDE_COLOR for e in guide)
    assert "q: mlp(64)" in by_name(spec)["z"]["label"]
    assert "q:" not in by_name(graph_spec(model))["z"]["label"]


def test_student_side_by_side_with_scaled_networks(load: Loader) -> None:
    model = load("hm")
    spec = graph_spec(model, student_width=model.distill.widths[0])
    clusters = {c["name"]: c for c in spec["clusters"]}
    assert clusters["cluster_teacher"]["label"] == "teacher"
    assert clusters["cluster_student"]["label"] == "student (width 0.25)"
    nodes = by_name(spec)
    for node in model.nodes:
        for side in ("teacher", "student"):
            assert nodes[f"{side}.{node.name}"]["cluster"] == f"cluster_{side}"
            assert f"{side}.{node.name}" in clusters[f"cluster_{side}"]["nodes"]
    assert nodes["teacher.z3"]["label"] == "z3\nBernoulli[2]\nmlp(8)"
    assert nodes["student.z3"]["label"] == "z3\nBernoulli[2]\nmlp(2)"
    edges = {(e["src"], e["dst"]) for e in spec["edges"]}
    assert {("teacher.z4", "teacher.z3"), ("student.z4", "student.z3")} <= edges
    assert len(spec["edges"]) == 2 * len(model_edges(model))


def test_student_time_plates_nest_inside_each_side(load: Loader) -> None:
    spec = graph_spec(load("vrnn"), student_width=0.25)
    plates = {c["name"]: c for c in spec["clusters"] if c["parent"]}
    assert plates["cluster_teacher_time"]["parent"] == "cluster_teacher"
    assert plates["cluster_student_time"]["nodes"] == ["student.z", "student.x", "student.h"]
    assert by_name(spec)["student.z"]["label"] == "z[t]\nNormal[8]\nmlp(16)"


def test_to_digraph_is_built_from_the_description(load: Loader) -> None:
    model = load("vrnn")
    source = dgmc.to_digraph(model).source
    assert "subgraph cluster_time" in source and 'label="t = 1..40"' in source
    assert "h -> h" in source and "style=dashed" in source
    student = to_digraph(model, student=True).source
    assert "cluster_student" in student and "student (width 0.5)" in student


@pytest.mark.parametrize("name", SPECS)
def test_render_dot_writes_source_naming_every_node(load: Loader, name: str, tmp_path: Path) -> None:
    model = load(name)
    written = render_file(model, tmp_path / f"{name}.dot")
    assert written == tmp_path / f"{name}.dot"
    source = written.read_text()
    assert source.startswith(f"digraph {name} {{")
    for node in model.nodes:
        assert (f"\t{node.name} [label=" in source) == (node.name not in guide_states(model))
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.dot"]  # no temporary files left


def test_missing_dot_raises_and_still_writes_the_source(load: Loader, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    out = tmp_path / "vrnn.svg"
    with pytest.raises(RenderError) as raised:
        render_file(load("vrnn"), out)
    message = str(raised.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert str(tmp_path / "vrnn.dot") in message
    assert (tmp_path / "vrnn.dot").read_text().startswith("digraph vrnn")
    assert not out.exists()


def test_dot_missing_from_path_at_run_time(load: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`which` can be wrong (a stale answer): graphviz's ExecutableNotFound maps to the same error."""
    monkeypatch.setattr(shutil, "which", lambda _name: "/usr/bin/dot")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        render_file(load("hm"), tmp_path / "hm.png")
    assert (tmp_path / "hm.dot").exists()


def test_unknown_suffix_lists_the_supported_ones(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"\.dot, \.svg, \.png, \.pdf"):
        render_file(load("vae"), tmp_path / "vae.jpeg")
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_missing_dot_without_traceback(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert main(["render", str(root / "specs" / "hm.dgm"), "-o", str(tmp_path / "hm.svg"), "--student"]) == 1
    err = capsys.readouterr().err
    assert "dgmc: error:" in err and "apt-get" in err and "Traceback" not in err
    assert "student (width 0.25)" in (tmp_path / "hm.dot").read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's `dot` is not installed (apt-get install graphviz)")
def test_render_real_svg(load: Loader, tmp_path: Path) -> None:
    model = load("vrnn")
    out = render_file(model, tmp_path / "vrnn.svg")
    assert out == tmp_path / "vrnn.svg"
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for node in model.nodes:
        assert f"<title>{node.name}</title>" in svg
        assert f">{node.name}[t]</text>" in svg
    assert ">t = 1..40</text>" in svg
    assert (tmp_path / "vrnn.dot").exists()


def test_student_states_shrink_with_the_width(load: Loader) -> None:
    spec = graph_spec(load("vrnn"), student_width=0.5)
    labels = {n["name"]: n["label"] for n in spec["nodes"]}
    assert "Real[64]" in labels["teacher.h"] and "Real[32]" in labels["student.h"]
    assert "Normal[8]" in labels["student.z"]  # compared nodes keep their size


# Heat: `dgmc render --run DIR` colours nodes by their distillation terms, read from a
# hand-written DIR/metrics.json in the run directory's layout.

HM_TERMS = {"z4": 0.0, "z3": 0.003, "y2": 0.04, "z2": 0.01, "z1": 0.02, "y1": 0.08}


def student_row(method: str, width: float, seed: int, terms: dict[str, float]) -> dict:
    fidelity = {f"fidelity[{node}]": value for node, value in terms.items()}
    return {"model": "student", "method": method, "width": width, "seed": seed, "steps": 10,
            "test_objective": 1.5, **fidelity, "fidelity": sum(terms.values())}


def write_run(path: Path, rows: list[dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    teacher = {"model": "teacher", "seed": 0, "test_objective": 1.2}
    (path / "metrics.json").write_text(json.dumps([teacher, *rows], indent=2))
    return path


@pytest.fixture
def hm_run(tmp_path: Path) -> Path:
    """hm with ours at widths 0.25 (seeds 0..2, terms HM_TERMS scaled 0.5, 1, 1.5) and
    0.5 (one seed, everything 1), and local at width 0.25 (everything 2)."""
    rows = [student_row("ours", 0.25, seed, {k: v * (0.5 + 0.5 * seed) for k, v in HM_TERMS.items()})
            for seed in range(3)]
    rows.append(student_row("ours", 0.5, 0, dict.fromkeys(HM_TERMS, 1.0)))
    rows.append(student_row("local", 0.25, 0, dict.fromkeys(HM_TERMS, 2.0)))
    return write_run(tmp_path / "run", rows)


def luma(color: str) -> float:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_heat_color_scale_runs_from_white_to_strong_red() -> None:
    assert heat_color(0.0) == "#ffffff" == HEAT_SCALE[0]
    assert heat_color(1.0) == HEAT_SCALE[-1] == "#cb181d"
    assert heat_color(-0.5) == "#ffffff" and heat_color(2.0) == HEAT_SCALE[-1]  # clamped
    lumas = [luma(heat_color(i / 20)) for i in range(21)]
    assert lumas == sorted(lumas, reverse=True) and len(set(lumas)) == 21  # darker as the term grows
    assert heat_color(0.5) == HEAT_SCALE[3]


def test_heat_in_the_description(load: Loader) -> None:
    spec = graph_spec(load("hm"), heat=HM_TERMS, caption="distillation terms: ours, width 0.25, seed 0")
    nodes = by_name(spec)
    assert {name: node["heat"] for name, node in nodes.items()} == HM_TERMS
    assert nodes["y1"]["fillcolor"] == HEAT_SCALE[-1] and nodes["y1"]["fontcolor"] == "white"
    assert nodes["z4"]["fillcolor"] == "#ffffff" and nodes["z4"]["fontcolor"] == "black"
    assert nodes["y2"]["fillcolor"] == heat_color(0.5)
    order = sorted(HM_TERMS, key=HM_TERMS.__getitem__)
    assert [luma(nodes[n]["fillcolor"]) for n in order] == sorted((luma(nodes[n]["fillcolor"]) for n in order),
                                                                  reverse=True)
    assert all(node["style"] == "filled" for node in nodes.values())
    assert nodes["y1"]["label"] == "y1\nNormal[1]\nmlp(8)\nscale=0.5\nL = 0.08"
    assert nodes["z3"]["label"].endswith("\nL = 0.003")
    # fill encodes heat, so the border tells observed from latent
    assert {n: node["peripheries"] for n, node in nodes.items()} == {
        "z4": 1, "z3": 1, "y2": 2, "z2": 1, "z1": 1, "y1": 2}
    assert spec["label"].split("\n") == [
        "hm", "distillation terms: ours, width 0.25, seed 0",
        "fill: L relative to the largest (0.08), white = 0; double border = observed"]
    assert json.loads(json.dumps(spec)) == spec


def test_nodes_without_a_term_keep_their_look(load: Loader) -> None:
    plain = by_name(graph_spec(load("vrnn")))
    nodes = by_name(graph_spec(load("vrnn"), heat={"z": 0.5, "x": 2.0}))
    assert nodes["h"] == plain["h"] and "heat" not in nodes["h"]
    assert nodes["x"]["fillcolor"] == HEAT_SCALE[-1] and nodes["z"]["label"].endswith("\nL = 0.5")
    cvae = by_name(graph_spec(load("cvae"), heat={"z": 0.0, "x": 0.0}))
    assert cvae["c"]["fillcolor"] == NODE_STYLES["input"]["fillcolor"]
    assert cvae["x"]["fillcolor"] == cvae["z"]["fillcolor"] == "#ffffff"  # all zero: all white


def test_heat_side_by_side_paints_the_student(load: Loader, hm_run: Path) -> None:
    model = load("hm")
    heat = load_heat(hm_run, model, "ours", 0.5)
    source = to_digraph(model, student=True, heat=heat).source
    assert "student (width 0.5)" in source  # the heat's width, not the spec's first
    nodes = by_name(graph_spec(model, 0.5, heat=heat.values))
    assert nodes["student.y1"]["heat"] == 1.0 and "heat" not in nodes["teacher.y1"]
    assert nodes["teacher.y1"]["fillcolor"] == NODE_STYLES["observed"]["fillcolor"]


def test_load_heat_averages_seeds_of_the_smallest_width(load: Loader, hm_run: Path) -> None:
    heat = load_heat(hm_run, load("hm"))
    assert (heat.method, heat.width, heat.seeds) == ("ours", 0.25, (0, 1, 2))
    assert heat.values == pytest.approx(HM_TERMS)  # the mean of 0.5, 1 and 1.5 times
    assert list(heat.values) == ["z4", "z3", "y2", "z2", "z1", "y1"]
    assert heat.caption == "distillation terms: ours, width 0.25, mean of 3 seeds"


def test_load_heat_picks_width_and_method(load: Loader, hm_run: Path) -> None:
    wide = load_heat(hm_run, load("hm"), width=0.5)
    assert wide.values == dict.fromkeys(HM_TERMS, 1.0)
    assert wide.caption == "distillation terms: ours, width 0.5, seed 0"
    local = load_heat(hm_run, load("hm"), "local")
    assert (local.method, local.width, local.values["y1"]) == ("local", 0.25, 2.0)


def test_load_heat_vrnn_has_no_term_for_the_deterministic_node(load: Loader, tmp_path: Path) -> None:
    rows = [student_row("ours", w, s, {"z": w * s, "x": 1.0}) for w in (0.5, 0.25) for s in (0, 1)]
    heat = load_heat(write_run(tmp_path / "run", rows), load("vrnn"))
    assert heat.values == {"z": 0.125, "x": 1.0} and heat.width == 0.25


@pytest.mark.parametrize(("method", "width", "expected"), [
    ("scratch", None, r"no student of method 'scratch'; available: ours \(widths 0.25, 0.5\), local \(widths 0.25\)"),
    ("ours", 0.125, "no ours student of width 0.125; ours has widths 0.25, 0.5"),
])
def test_load_heat_names_what_the_run_has(load: Loader, hm_run: Path, method: str, width: float | None,
                                          expected: str) -> None:
    with pytest.raises(RenderError, match=expected):
        load_heat(hm_run, load("hm"), method, width)


def test_load_heat_names_a_missing_node(load: Loader, tmp_path: Path) -> None:
    partial = {k: v for k, v in HM_TERMS.items() if k != "z2"}
    rows = [student_row("ours", 0.25, 0, HM_TERMS), student_row("ours", 0.25, 1, partial)]
    with pytest.raises(RenderError, match=r"no term for node 'z2' \(fidelity\[z2\]\) in the ours, width 0.25 "
                                          r"rows of seed\(s\) 1; the rows have terms for: "):
        load_heat(write_run(tmp_path / "run", rows), load("hm"))


def test_load_heat_missing_run_or_metrics(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="no run directory"):
        load_heat(tmp_path / "nowhere", load("hm"))
    (tmp_path / "half").mkdir()
    with pytest.raises(RenderError, match=r"metrics.json'.*not a finished run"):
        load_heat(tmp_path / "half", load("hm"))
    (tmp_path / "half" / "metrics.json").write_text("{not json")
    with pytest.raises(RenderError, match="not valid JSON"):
        load_heat(tmp_path / "half", load("hm"))
    with pytest.raises(RenderError, match="no student rows"):
        load_heat(write_run(tmp_path / "teacher_only", []), load("hm"))


def test_load_heat_refuses_a_diverged_student(load: Loader, tmp_path: Path) -> None:
    rows = [student_row("ours", 0.25, 0, {**HM_TERMS, "z1": float("nan")})]
    with pytest.raises(RenderError, match="term of node 'z1' is not finite"):
        load_heat(write_run(tmp_path / "run", rows), load("hm"))


@pytest.mark.parametrize(("extra", "expected"), [
    (["--run", "RUN", "--method", "scratch"], "available: ours (widths 0.25, 0.5), local (widths 0.25)"),
    (["--run", "RUN", "--width", "0.125"], "ours has widths 0.25, 0.5"),
    (["--run", "NOWHERE"], "no run directory"),
    (["--width", "0.25"], "give --run DIR too"),
])
def test_cli_heat_errors_exit_1_without_traceback(root: Path, tmp_path: Path, hm_run: Path, extra: list[str],
                                                  expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    places = {"RUN": str(hm_run), "NOWHERE": str(tmp_path / "nowhere")}
    args = ["render", str(root / "specs" / "hm.dgm"), "-o", str(tmp_path / "hm.dot")]
    assert main(args + [places.get(a, a) for a in extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dgmc: error:") and expected in err and "Traceback" not in err
    assert not (tmp_path / "hm.dot").exists()


@pytest.mark.parametrize("name", ["hm", "vrnn"])
def test_cli_heat_writes_an_svg_with_the_terms(root: Path, load: Loader, tmp_path: Path, name: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    model = load(name)
    nodes = [n.name for n in model.nodes if n.kind in ("latent", "observed")]
    run = write_run(tmp_path / "run", [student_row("ours", 0.25, s, {n: 0.01 * (i + s) for i, n in enumerate(nodes)})
                                       for s in (0, 1)])
    svg = shutil.which("dot") is not None
    out = tmp_path / (f"{name}.svg" if svg else f"{name}.dot")
    assert main(["render", str(root / "specs" / f"{name}.dgm"), "--run", str(run), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert "distillation terms: ours, width 0.25, mean of 2 seeds" in text
    for i, node in enumerate(nodes):
        assert f"L = {0.01 * i + 0.005:.3g}" in text, node
    if not svg:
        pytest.skip("graphviz's `dot` is not installed: checked the DOT source only")
    for node in model.nodes:
        assert f"<title>{node.name}</title>" in text
    assert f'fill="{HEAT_SCALE[-1]}"' in text


def test_the_guide_is_drawn_with_its_own_states(load: Loader) -> None:
    """`dgmc render --guide` of a smoothing model: the backward state the guide declares is
    drawn, its edges and the guide's dotted, the read of the next step labelled `t+1`."""
    spec = graph_spec(load("srnn"), guide=True)
    assert "a" in {n["name"] for n in spec["nodes"]}
    into_state = [e for e in spec["edges"] if e["dst"] == "a"]
    assert into_state and all(e["guide"] and e["style"] == "dotted" for e in into_state)
    assert ("a", "t+1") in {(e["src"], e["label"]) for e in into_state}
    label = next(n["label"] for n in spec["nodes"] if n["name"] == "a")
    assert "a[41] = 0" in label  # its value after the last step
