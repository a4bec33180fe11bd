"""Registries and plugins: what a spec can name is what is registered, from dgmc, from
Python, from `--plugin MODULE`, or from an installed package's entry point; examples/plugin
driven end to end through the command line both ways."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.core.registry import RegistryError
from dgmc.datasets import DATASETS, load_split
from dgmc.lower import compile_model
from dgmc.networks import NETWORKS, build_mlp
from dgmc.plugins import PluginError

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin"
SPEC = """model m {
  latent z : Normal[2](loc = 0, scale = 1)
  observed x : Normal[3]
  z -> x via wide(8, factor = 3)
}
"""


@pytest.fixture
def wide_network():
    """A network kind registered from Python for one test, removed after."""
    kind = dgmc.NetworkKind("wide", build_mlp, widths=True, default_widths=(4,),
                            options=(dgmc.Option("factor", "int", 2, minimum=1),),
                            scale=lambda net, width: net.model_copy(update={"hidden": (1,)}), doc="for a test")
    dgmc.register_network(kind)
    yield kind
    NETWORKS.unregister("wide")


def test_a_network_registered_from_python_is_checked_built_and_scaled(wide_network) -> None:
    model = dgmc.loads(SPEC)
    assert model.node("x").net.options == {"factor": 3} and NETWORKS.origin_of("wide") == "python"
    assert compile_model(model).parameter_counts()["x"]["model"] == 2 * 8 + 8 + 8 * 6 + 6
    assert compile_model(model, 0.5).parameter_counts()["x"]["model"] == 2 * 1 + 1 + 1 * 6 + 6  # its own scaling
    with pytest.raises(dgmc.DgmError, match=r"'factor' of wide must be an integer >= 1, not 0"):
        dgmc.loads(SPEC.replace("factor = 3", "factor = 0"))
    with pytest.raises(dgmc.DgmError, match=r"The network wide has no argument 'facto'\. Did you mean 'factor'"):
        dgmc.loads(SPEC.replace("factor = 3", "facto = 3"))


def test_unregistered_names_never_reach_a_builder_and_registrations_are_checked() -> None:
    with pytest.raises(dgmc.DgmError, match=r"Unknown network 'wide' \(known: mlp, linear, gated, gru, lstm"):
        dgmc.loads(SPEC)
    with pytest.raises(RegistryError, match=r"network 'mlp' is already registered \(by dgmc\)"):
        dgmc.register_network(NETWORKS["mlp"])
    with pytest.raises(RegistryError, match="is not a name a spec can write"):
        dgmc.register_network(dgmc.NetworkKind("two words", build_mlp))
    with pytest.raises(RegistryError, match="a recurrent kind needs a `step` function"):
        dgmc.register_network(dgmc.NetworkKind("cell", build_mlp, recurrent=True))
    with pytest.raises(RegistryError, match=r"register_family takes a dgmc\.Family"):
        dgmc.register_family("Normal")
    with pytest.raises(RegistryError, match="unknown flags"):
        dgmc.register_dataset(dgmc.Dataset("d", {}, flags=("shuffle",), exclusive=(), rows=0, doc="", load=dict))
    assert "two_moons" not in DATASETS


def _dgmc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dgmc.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture
def in_plugin_folder(monkeypatch: pytest.MonkeyPatch):
    """The command line run from examples/plugin; what the plugin registers is removed after."""
    monkeypatch.chdir(PLUGIN)
    yield
    NETWORKS.unregister("resmlp")
    DATASETS.unregister("two_moons")
    sys.modules.pop("dgmc_example_plugin", None)


def test_the_example_plugin_through_the_plugin_option(in_plugin_folder, tmp_path: Path, capsys) -> None:
    assert main(["check", "moons.dgm"]) == 1
    assert "Unknown network 'resmlp'" in capsys.readouterr().err
    assert main(["check", "moons.dgm", "--plugin", "no_such_plugin"]) == 1
    assert "--plugin no_such_plugin: no module named 'no_such_plugin'" in capsys.readouterr().err
    assert main(["plugins", "--plugin", "dgmc_example_plugin"]) == 0
    listed = capsys.readouterr().out
    assert "resmlp  plugin dgmc_example_plugin" in listed and "two_moons     plugin dgmc_example_plugin" in listed
    run = tmp_path / "run"
    assert main(["run", "moons.dgm", "--plugin", "dgmc_example_plugin", "--quick", "--no-progress",
                 "--methods", "ours", "--seeds", "0", "--out", str(run)]) == 0
    assert (run / "students" / "student_ours_w0.25_s0.pt").is_file()
    assert "| width 0.25" in (run / "report.md").read_text()


GATED_PLUGIN = """import dgmc
from dgmc.networks import build_mlp

dgmc.register_network(dgmc.NetworkKind("gatedmlp", build_mlp, widths=True, default_widths=(4,), doc="for a test"))
"""


@pytest.fixture
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A working directory with plugins/ for plugin files; what they register, and their
    modules, are removed after."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plugins").mkdir()
    yield tmp_path / "plugins"
    for name in ("gated_mlp", "broken", "typo", "plugins", "plugins.broken"):
        sys.modules.pop(name, None)
    if "gatedmlp" in NETWORKS:
        NETWORKS.unregister("gatedmlp")


def test_a_plugin_file_is_loaded_by_its_path_from_the_option_and_the_api(plugin_folder: Path, capsys) -> None:
    (plugin_folder / "gated_mlp.py").write_text(GATED_PLUGIN)
    (plugin_folder.parent / "m.dgm").write_text(SPEC.replace("wide(8, factor = 3)", "gatedmlp(8)"))
    assert main(["check", "m.dgm", "--plugin", "plugins/gated_mlp.py"]) == 0
    assert NETWORKS.origin_of("gatedmlp") == "plugin plugins/gated_mlp.py"
    dgmc.load_plugin("plugins/gated_mlp.py")  # the same file again: loaded once, as an import is
    NETWORKS.unregister("gatedmlp")
    del sys.modules["gated_mlp"]
    dgmc.load_plugin(plugin_folder / "gated_mlp.py")
    assert dgmc.load("m.dgm").node("x").net.name == "gatedmlp"
    assert main(["check", "m.dgm", "--plugin", "plugins/none.py"]) == 1
    assert "dgmc: error: --plugin plugins/none.py: no such file 'plugins/none.py'." in capsys.readouterr().err
    with pytest.raises(PluginError, match=r"^dgmc\.load_plugin\('plugins/none\.py'\): no such file"):
        dgmc.load_plugin("plugins/none.py")


def test_an_error_inside_a_plugin_names_the_plugins_file_and_line(plugin_folder: Path, capsys) -> None:
    path = plugin_folder / "broken.py"
    path.write_text('def weights():\n    raise RuntimeError("no weights for gated")\n\n\nweights()\n')
    assert main(["check", str(ROOT / "tests" / "good" / "laplace.dgm"), "--plugin", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"--plugin {path} failed to import, at '{path}', line 2: RuntimeError: no weights for gated." in err
    assert "Traceback" not in err
    with pytest.raises(PluginError, match=r"dgmc\.load_plugin\('plugins\.broken'\) failed to import, at "
                                          r"'.*broken\.py', line 2: RuntimeError"):
        dgmc.load_plugin("plugins.broken")  # by module name, found from the working directory
    (plugin_folder / "typo.py").write_text("import dgmc\n\ndgmc.register_network(\n")
    with pytest.raises(PluginError, match=r"at '.*typo\.py', line 3: SyntaxError: '\(' was never closed\.$"):
        dgmc.load_plugin(plugin_folder / "typo.py")


def test_the_example_plugin_installed_is_found_by_its_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PLUGIN)], check=True, capture_output=True, timeout=300)
    env = {"PYTHONPATH": str(site)}
    listed = _dgmc("plugins", cwd=tmp_path, env=env)
    assert "resmlp  entry point example (dgmc-example-plugin)" in listed.stdout, listed.stderr
    done = _dgmc("train", str(PLUGIN / "moons.dgm"), "--quick", "--no-progress", "--out", str(tmp_path / "run"),
                 cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "teacher.pt").is_file()


class HalfNormal(dgmc.Family):
    """README's example of a family registered from Python."""

    def noise(self, shape, generator, device):
        return torch.randn(shape, generator=generator).to(device)

    def reparam(self, eps, params):
        return params["scale"] * eps.abs()

    def base(self, params):
        return torch.distributions.HalfNormal(params["scale"], validate_args=False)


def test_a_family_registered_from_python_trains_and_distills() -> None:
    from dgmc.distillation.distill import distill
    from dgmc.families import FAMILIES
    from dgmc.losses import describe
    from dgmc.training.loop import fit

    dgmc.register_family(HalfNormal(name="HalfNormal", domain="positive", params=("scale",),
                                    constraints={"scale": "positive"}, formula="scale * |eps|", doc="for a test"))
    try:
        model = dgmc.loads("""model h {
  data old_faithful { x = [eruptions, waiting] }
  latent z : HalfNormal[2](scale = 1)
  observed x : LogNormal[2]
  z -> x via mlp(8)
  guide { x -> z via mlp(8) }
  train elbo(steps = 20)
  distill(steps = 5)
}""")
        assert "L_z[z]  = E kl(p_T(z | eps), p_S(z | eps))  weight 1, HalfNormal, Monte Carlo" in describe(model)
        teacher = compile_model(model)
        history = fit(teacher, model.train, load_split(model).train, 20, seed=0, progress=False)
        assert all(math.isfinite(v) for v in history["loss"])
        _, distilled = distill(model, teacher, 0.5, "ours", 0, progress=False)
        assert all(math.isfinite(v) for v in distilled["loss"])
    finally:
        FAMILIES.unregister("HalfNormal")


def build_off(net: dgmc.ir.Network, in_dim: int, out_dim: int) -> torch.nn.Module:
    """A plugin's network that gets its output width wrong by `extra` columns."""
    return torch.nn.Linear(in_dim, out_dim + int(net.options["extra"]))


@pytest.fixture
def off_network():
    """A flat network kind whose output is `extra` columns off, for one test."""
    kind = dgmc.NetworkKind("off", build_off, options=(dgmc.Option("extra", "int", 0),), doc="for a test")
    dgmc.register_network(kind)
    yield kind
    NETWORKS.unregister("off")


OFF = """model m {
  latent z : Normal[2]
  observed x : Normal[3]
  z -> x via MODEL
  guide { x -> z via GUIDE }
}
"""


@pytest.mark.parametrize(("extra", "where", "message"), [
    (-1, "model", r"The network off\(extra=-1\) of 'x' \(line 4\) returns \[batch, 5\], but 'x' : Normal\[3\] "
                  r"needs \[batch, 6\] for its parameters loc, scale\."),
    (1, "model", r"The network off\(extra=1\) of 'x' \(line 4\) returns \[batch, 7\], but 'x' : Normal\[3\] "
                 r"needs \[batch, 6\]"),
    (-1, "guide", r"The guide network off\(extra=-1\) of 'z' \(line 5\) returns \[batch, 3\], but 'z' : "
                  r"Normal\[2\] needs \[batch, 4\] for its parameters loc, scale\."),
    (1, "guide", r"The guide network off\(extra=1\) of 'z' \(line 5\) returns \[batch, 5\], but 'z' : "
                 r"Normal\[2\] needs \[batch, 4\]"),
])
def test_a_plugin_network_of_the_wrong_width_is_refused_when_compiled(off_network, extra: int, where: str,
                                                                      message: str) -> None:
    """A column short once broadcast against the node's parameters and trained silently;
    one too many failed to unpack inside generated code."""
    spec = OFF.replace("MODEL", f"off(extra = {extra})" if where == "model" else "off")
    spec = spec.replace("GUIDE", f"off(extra = {extra})" if where == "guide" else "off")
    model = dgmc.loads(spec)
    with pytest.raises(dgmc.UserError, match=message):
        compile_model(model)
    with pytest.raises(dgmc.UserError, match=message.replace(r"\) returns", r", the student of width 0\.5\) returns")):
        compile_model(model, 0.5)  # the student's own network, scaled
    assert set(compile_model(dgmc.loads(OFF.replace("MODEL", "off").replace("GUIDE", "off"))).nets) == {"p_x", "q_z"}


def test_a_deterministic_node_whose_network_is_the_wrong_width_is_refused(off_network) -> None:
    model = dgmc.loads("""model m {
  input c : Real[3]
  deterministic r : Real[8]
  observed x : Bernoulli[4]
  c -> r via off(extra = 2)
  r -> x
}""")
    with pytest.raises(dgmc.UserError, match=r"The network off\(extra=2\) of 'r' \(line 5\) returns \[batch, 10\], "
                                              r"but 'r' : Real\[8\] needs \[batch, 8\] for its value\."):
        compile_model(model)
    with pytest.raises(dgmc.UserError, match=r"of 'r' \(line 5, the student of width 0\.5\) returns \[batch, 6\], "
                                              r"but 'r' : Real\[4\] needs \[batch, 4\]"):
        compile_model(model, 0.5)


def test_the_output_check_runs_once_at_compile_time_not_per_call(off_network) -> None:
    compiled = compile_model(dgmc.loads(OFF.replace("MODEL", "off").replace("GUIDE", "off")))
    calls = []
    compiled.nets["p_x"].register_forward_hook(lambda module, inputs, output: calls.append(output.shape))
    for _ in range(3):
        compiled.sample(5)
    assert calls == [torch.Size([5, 6])] * 3  # the network's own calls, nothing added per call


def test_a_flat_network_kind_may_say_what_it_cannot_map_and_the_checker_reports_it() -> None:
    def only_vectors(net: dgmc.ir.Network, in_shapes: tuple, out_shape: tuple) -> str | None:
        return f"it takes at most 4 inputs, not {sum(s[0] for s in in_shapes)}" if sum(
            s[0] for s in in_shapes) > 4 else None

    dgmc.register_network(dgmc.NetworkKind("small", build_mlp, fits=only_vectors, doc="for a test"))
    try:
        spec = OFF.replace("MODEL", "small").replace("GUIDE", "small").replace("Normal[3]", "Normal[5]")
        with pytest.raises(dgmc.DgmError, match=r"small cannot compute the guide of 'z' \(Normal\[2\], output "
                                                r"\[4\]\) from x \[5\]: it takes at most 4 inputs, not 5\."):
            dgmc.loads(spec)
        assert dgmc.loads(spec.replace("Normal[5]", "Normal[4]")).node("x").net.name == "small"
    finally:
        NETWORKS.unregister("small")
