"""Generated passes (dgmc.lower.generate) against the reference interpreter (`interpret.Run`): on
the same weights, noise and generator state, every value, noise and parameter of every
pass is equal bit for bit, for every shipped spec (teacher and a student) and for random
specs of the hypothesis strategy; `dgmc compile --emit code` prints the running source,
and that source is valid, ruff-clean Python."""

from __future__ import annotations

import subprocess
import sys
import traceback
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from strategies import specs

import dgmc
from dgmc.cli import main
from dgmc.distillation.distill import distillation_loss
from dgmc.ir import Model
from dgmc.losses import generate
from dgmc.losses.methods import METHODS
from dgmc.lower import CompiledModel, Trace, compile_model
from dgmc.report.describe import code, shown
from dgmc.training.objectives import _elbo_parts, _mle_parts, _wake_sleep_parts

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "specs").glob("*.dgm"))
BATCH = 3


def assert_same(a: Trace, b: Trace) -> None:
    for field in ("values", "noise", "params"):
        left, right = getattr(a, field), getattr(b, field)
        assert list(left) == list(right), field
        for name in left:
            pairs = [(left[name], right[name])] if field != "params" else \
                [(left[name][k], right[name][k]) for k in left[name]]
            for x, y in pairs:  # bit for bit; a NaN (an exploding random chain) equals a NaN
                torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True, msg=f"{field}[{name}] differs")


def inputs_of(model: Model, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {n.name: torch.rand(BATCH, *((model.time.steps,) if n.timed else ()), n.size, generator=generator)
            .round() for n in model.of_kind("input")}


def pair(model: Model, width: float | None) -> tuple[CompiledModel, CompiledModel]:
    """The generated module and the interpreted one on the same weights."""
    generated = compile_model(model, width)
    for p in generated.parameters():  # learned initial values and free vectors start at 0: make them count
        p.data.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
    interpreted = compile_model(model, width)
    interpreted.load_state_dict(generated.state_dict())
    interpreted.interpret = True
    return generated, interpreted


def check_every_pass(model: Model, width: float | None) -> None:
    generated, interpreted = pair(model, width)
    inputs = inputs_of(model, torch.Generator().manual_seed(0))
    a, b = (m.sample(BATCH, inputs, torch.Generator().manual_seed(1)) for m in (generated, interpreted))
    assert_same(a, b)
    lean = generated.sample(BATCH, inputs, torch.Generator().manual_seed(1), read=())  # what nothing reads left out
    read = {r.node for s in generated.generative.steps for r in s.parents} | set(generated.initial_names.values())
    kept = {k: v for k, v in a.values.items() if k in read or k in inputs or k not in a.params}
    assert_same(lean, Trace(kept, a.noise, a.params))
    random = {k: v for k, v in a.values.items() if k in a.noise}
    if random or inputs:  # else a pass on given noise has nothing to tell its batch size by
        for method in METHODS:  # a distillation step's student: the teacher's noise, each method's given nodes
            fed = {n: a.values[n] for n in generated.fed(method)}
            assert_same(generated.run(a.noise, inputs, fed), interpreted.run(a.noise, inputs, fed))
        assert_same(generated.run({}, inputs, random), interpreted.run({}, inputs, random))  # the ELBO's p pass
    observed = {n.name: a.values[n.name] for n in model.of_kind("observed")}
    unguided = {n.name: a.values[n.name] for n in model.of_kind("latent") if n.guide is None}
    data = {**inputs, **observed, **unguided}
    if generated.inference is not None and data:  # (with no data at all, nothing tells the batch size)
        assert_same(*(m.infer(data, generator=torch.Generator().manual_seed(2)) for m in (generated, interpreted)))
        latents = {n.name: a.values[n.name] for n in model.of_kind("latent")}
        assert_same(*(m.infer({**data, **latents}, {k: v for k, v in a.noise.items() if k in latents},
                              torch.Generator().manual_seed(3)) for m in (generated, interpreted)))


def assert_same_parts(parts: list[dict[str, torch.Tensor]], modules: tuple[CompiledModel, CompiledModel]) -> None:
    """Two objectives' terms equal bit for bit, and so are the gradients they leave."""
    assert list(parts[0]) == list(parts[1])
    for key in parts[0]:
        torch.testing.assert_close(parts[0][key], parts[1][key], rtol=0, atol=0, equal_nan=True, msg=key)
    for part in parts:
        total = sum(v.sum() for v in part.values())
        if isinstance(total, torch.Tensor) and total.requires_grad:  # (a term of fixed parameters has no gradient)
            total.backward()
    for (name, a), b in zip(modules[0].named_parameters(), modules[1].parameters(), strict=True):
        if a.grad is not None or b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0, equal_nan=True, msg=f"grad {name}")


def check_objectives(model: Model, width: float | None) -> None:
    """The generated `elbo_parts`, `wake_sleep_parts` and `mle_parts` against the
    reference in `objectives` on the interpreter, gradients included, bit for bit (the
    ELBO and wake-sleep on models they apply to: every latent guided)."""
    inputs = inputs_of(model, torch.Generator().manual_seed(0))
    with torch.no_grad():
        sample = compile_model(model, width).sample(BATCH, inputs, torch.Generator().manual_seed(1)).values
    data = {k: v for k, v in sample.items() if k in inputs or model.node(k.split("[")[0]).kind == "observed"}
    if not data:
        return
    latents = model.of_kind("latent")
    guided = model.fully_guided()
    every = guided and all(n.guide is not None for n in latents)  # wake-sleep infers every latent
    for objective, applies in ((_elbo_parts, guided), (_wake_sleep_parts, every), (_mle_parts, not latents)):
        if applies:
            modules = pair(model, width)
            assert_same_parts([objective(m, data, torch.Generator().manual_seed(4)) for m in modules], modules)


def check_distillation(model: Model, width: float) -> None:
    """The student's generated `distill_loss` against `distillation.term_values` on the
    interpreter, for every method that distills and for the fidelity's terms; with the
    guide's terms (`guide_distill_loss`) where the model has a guide."""
    inputs = inputs_of(model, torch.Generator().manual_seed(0))
    if not inputs and not [n for n in model.nodes if n.kind in ("latent", "observed")]:
        return
    teacher = pair(model, None)[0]
    for method in (m for m in METHODS if METHODS[m].distills):
        for terms in (generate(model, method), tuple(replace(t, divergence="kl") if t.divergence == "bce" else t
                                                     for t in generate(model, method, lam=0.3))):
            students = pair(model, width)
            parts = []
            for student in students:
                guide = torch.Generator().manual_seed(6) if model.fully_guided() else None
                loss, terms_ = distillation_loss(teacher, student, terms, method, BATCH, inputs,
                                                 torch.Generator().manual_seed(5), guide=guide)
                parts.append({"loss": loss, **terms_})
            assert_same_parts(parts, students)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_generated_passes_equal_the_interpreter_on_every_shipped_spec(path: Path) -> None:
    model = dgmc.load(path)
    for width in (None, model.distill.widths[-1]):
        check_every_pass(model, width)
        check_objectives(model, width)
    check_distillation(model, model.distill.widths[-1])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_generated_passes_equal_the_interpreter_on_random_specs(text: str) -> None:
    model = dgmc.loads(text)
    check_every_pass(model, None)
    check_every_pass(model, model.distill.widths[0])
    check_objectives(model, None)
    check_distillation(model, model.distill.widths[0])


def ruff(text: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
                           "--stdin-filename", "generated.py", "-"], input=text, capture_output=True, text=True)


@pytest.mark.parametrize("name,width", [("vrnn", None), ("ssm", None), ("cvae", 0.25), ("conv_hvae", 0.12)])
def test_emitted_code_is_the_running_source_and_ruff_clean(name: str, width: float | None, capsys) -> None:
    argv = ["compile", str(ROOT / f"specs/{name}.dgm"), "--emit", "code"] + (["--width", str(width)] if width else [])
    assert main(argv) == 0
    printed = capsys.readouterr().out
    model = dgmc.load(ROOT / f"specs/{name}.dgm")
    compiled = compile_model(model, width)
    for signature in shown(compiled):  # call each shown signature; the text it compiled is in the print
        walk = compiled.inference if signature.name == "infer" else compiled.generative
        timed = {s.node for s in walk.timed}
        shape = {s.node: (BATCH, *((model.time.steps,) if s.node in timed else ()), s.size) for s in walk.steps}
        given_ = {n: torch.zeros(shape[n]) for n in signature.given}
        noise = {n: torch.full(shape[n], 0.5) for n in signature.noise}
        compiled._walk(signature.name, walk, BATCH, given_, noise, None)
        assert compiled.functions[signature][0] in printed
    data = {n.name: torch.zeros(BATCH, *((model.time.steps,) if n.timed else ()), n.size)
            for n in model.of_kind("observed", "input")}
    compiled.elbo_parts(data)  # the teacher's objective, and a distillation step under ours: run, then compare
    inputs = {k: v for k, v in data.items() if model.node(k).kind == "input"}
    distillation_loss(compile_model(model), compiled, generate(model, "ours"), "ours", BATCH, inputs, None)
    assert len(compiled.losses) == 2
    for text, _ in compiled.losses.values():
        assert text in printed
    assert printed == code(model, width)
    compile(printed, "generated.py", "exec")
    result = ruff(printed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "def run(self, batch, given, noise, generator):" in printed


def test_node_names_that_are_python_words_get_their_own_variables() -> None:
    text = """model words {
      latent batch : Normal[2]
      latent noise : Normal[2]
      observed t : Bernoulli[3]
      latent batch_eps : Normal[1]
      batch, noise -> t via mlp(4)
      t -> batch_eps
      guide { t -> batch  t -> noise  t -> batch_eps }
    }"""
    model = dgmc.loads(text)
    check_every_pass(model, None)
    source = code(model)
    assert "batch_ = batch_family.reparam(batch_eps, batch_params)" in source
    assert ruff(source).returncode == 0


def test_a_traceback_through_generated_code_shows_its_line() -> None:
    model = dgmc.load(ROOT / "specs/vae.dgm")
    compiled = compile_model(model)
    with pytest.raises(RuntimeError) as error:
        compiled.infer({"x": torch.zeros(BATCH, 3)})  # the wrong size for the guide's first layer
    frames = traceback.extract_tb(error.value.__traceback__)
    generated = [f for f in frames if f.filename.startswith("<dgmc infer")]
    assert generated and "q_" in generated[0].line


class ExpScaleNormal(dgmc.Family):
    """A family that constrains its own way (scale = exp(raw)): generated code calls its
    `assemble` rather than writing the base class's out."""

    def constrain(self, name: str, raw: torch.Tensor) -> torch.Tensor:
        return raw.exp() if name == "scale" else raw

    def noise(self, shape, generator, device):
        return torch.randn(shape, generator=generator).to(device)

    def reparam(self, eps, params):
        return params["loc"] + params["scale"] * eps

    def base(self, params):
        return torch.distributions.Normal(params["loc"], params["scale"], validate_args=False)


def test_a_family_with_its_own_assembly_is_called_not_written_out() -> None:
    from dgmc.families import FAMILIES

    dgmc.register_family(ExpScaleNormal(name="ExpScaleNormal", domain="real", params=("loc", "scale"),
                                        constraints={"loc": "real", "scale": "positive"}))
    try:
        model = dgmc.loads("""model e {
          latent z : Normal[2]
          observed x : ExpScaleNormal[3]
          z -> x via mlp(4)
          guide { x -> z }
        }""")
        check_every_pass(model, None)
        source = code(model)
        assert "x_params = x_family.assemble(p_x(z), None, x_spec, 3, batch, anchor)" in source
        assert "z_loc = self.free['p_z'].expand(batch, -1)" not in source  # z's loc, scale: one learned vector
        assert "z_loc, z_scale = self.free['p_z'].expand(batch, -1).split(2, dim=-1)" in source
    finally:
        FAMILIES.unregister("ExpScaleNormal")


def test_a_learned_initial_value_read_twice_has_the_interpreters_gradient() -> None:
    model = dgmc.loads("""model twice {
      time t in 1..3
      latent d[t] : Normal[1](scale = 0.5)
      observed a[t] : Normal[1]
      init d = learned
      d[t-1] -> d[t]
      d[t-1] -> a[t]
      guide { a[t] -> d[t] }
    }""")
    check_every_pass(model, None)
    check_objectives(model, None)  # inits.d: one tensor before the first step on both sides
