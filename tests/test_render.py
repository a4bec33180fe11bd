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
from dgmc.order import model_edges
from dgmc.render import GUIDE_COLOR, NODE_STYLES, RenderError, graph_spec, render_file, to_digraph

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
    nodes = by_name(graph_spec(model))
    assert set(nodes) == {n.name for n in model.nodes}
    for node in model.nodes:
        drawn = nodes[node.name]
        assert drawn["kind"] == node.kind
        assert {k: drawn[k] for k in ("shape", "style", "fillcolor")} == NODE_STYLES[node.kind]
        assert drawn["label"].split("\n")[1] == f"{node.type}[{node.size}]"
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
    assert sorted((e["src"], e["dst"], e["lag"]) for e in spec["edges"]) == sorted(model_edges(model))
    for edge in spec["edges"]:
        assert not edge["guide"]
        if edge["lag"]:
            assert (edge["style"], edge["label"]) == ("dashed", "t-1")
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
        assert f"\t{node.name} [label=" in source
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
