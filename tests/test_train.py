"""Teacher training: every objective lowers its loss on every shipped spec, runs are
deterministic for a seed, checkpoints refuse what does not match, `dgmc train` works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.datasets import load_split
from dgmc.lower import compile_model
from dgmc.training import checkpoint
from dgmc.training.checkpoint import CheckpointError
from dgmc.training.loop import fit
from dgmc.training.objectives import evaluate

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["vae", "hvae", "hm", "vrnn", "cvae", "classifier", "cb_vae", "relaxed_vae", "faithful_lognormal",
         "conv_digits"]
STEPS = {"vrnn": 25}  # 40 recurrent steps per example: the slowest spec


def load(name: str) -> dgmc.Model:
    return dgmc.load(ROOT / "specs" / f"{name}.dgm")


@pytest.mark.parametrize("name", SPECS)
def test_training_lowers_the_objective(name: str) -> None:
    model = load(name)
    torch.manual_seed(0)
    split = load_split(model)
    data = {k: v[:256] for k, v in split.train.items()}
    compiled = compile_model(model)
    recipe = model.train.model_copy(update={"batch": 64, "lr": 3e-3, "warmup": 0})
    before = evaluate(compiled, data, torch.Generator().manual_seed(1))
    fit(compiled, recipe, data, STEPS.get(name, 60), seed=0, progress=False)
    after = evaluate(compiled, data, torch.Generator().manual_seed(1))
    assert after < before - 0.05 * abs(before), (before, after)


def test_training_is_deterministic_for_a_seed() -> None:
    model = load("hm")
    data = load_split(model).train

    def weights(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        compiled = compile_model(model)
        fit(compiled, model.train, data, 20, seed=seed, progress=False)
        return [p.detach().clone() for p in compiled.parameters()]

    first, again, other = weights(3), weights(3), weights(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_checkpoint_round_trip_and_refusals(tmp_path: Path) -> None:
    model = load("hm")
    torch.manual_seed(0)
    teacher = compile_model(model)
    path = checkpoint.save(tmp_path / "teacher.pt", teacher, {"seed": 0})
    copy = compile_model(model)
    assert checkpoint.load(path, copy) == {"seed": 0}
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), copy.state_dict().values(),
                                                 strict=True))
    edited = dgmc.loads((ROOT / "specs/hm.dgm").read_text().replace("mlp(8)", "mlp(16)"))
    with pytest.raises(CheckpointError, match=r"made from spec 'hm' \(hash \w+\), but the spec given, 'hm' "
                                              r"\(hash \w+\), differs in node 'z4'"):
        checkpoint.load(path, compile_model(edited))
    reformatted = dgmc.loads("# a comment changes nothing\n" + (ROOT / "specs/hm.dgm").read_text())
    checkpoint.load(path, compile_model(reformatted))
    with pytest.raises(CheckpointError, match="width"):
        checkpoint.load(path, compile_model(model, 0.25))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable"):
        checkpoint.load(truncated, copy)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        checkpoint.load(tmp_path / "missing.pt", copy)


def test_a_student_checkpoint_is_refused_after_its_network_changed(tmp_path: Path) -> None:
    """The student's own network (`distill { y1 via ... }`) shapes its weights, so it is
    in the hash; the teacher's checkpoint stays valid."""
    text = (ROOT / "specs/hm.dgm").read_text().replace("seed = [0, 1, 2])", "seed = [0, 1, 2]) { y1 via mlp(3) }")
    model, changed = dgmc.loads(text), dgmc.loads(text.replace("mlp(3)", "mlp(4)"))
    path = checkpoint.save(tmp_path / "student.pt", compile_model(model, 0.25), {})
    assert checkpoint.matches(path, model, 0.25) and not checkpoint.matches(path, changed, 0.25)
    with pytest.raises(CheckpointError, match=r"differs in distill: retrain it"):
        checkpoint.load(path, compile_model(changed, 0.25))
    teacher = checkpoint.save(tmp_path / "teacher.pt", compile_model(model), {})
    assert checkpoint.matches(teacher, changed)


def test_a_checkpoint_whose_weights_do_not_fit_is_a_checkpoint_error(tmp_path: Path) -> None:
    model = load("hm")
    path = checkpoint.save(tmp_path / "teacher.pt", compile_model(model), {})
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["nets.p_y1.0.weight"]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="weights do not fit it"):
        checkpoint.load(path, compile_model(model))


def test_dgmc_train_quick_writes_checkpoint_metrics_and_pictures(tmp_path: Path, capsys) -> None:
    assert main(["train", str(ROOT / "specs/hm.dgm"), "--out", str(tmp_path), "--quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "-ELBO per example: train" in out
    meta = json.loads((tmp_path / "teacher.json").read_text())
    assert meta["metrics"]["steps"] == 100 and meta["metrics"]["parameters"] == 186
    assert (tmp_path / "teacher.pt").stat().st_size > 0
    assert list(tmp_path.glob("teacher_*.png"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_a_missing_gpu_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["train", str(ROOT / "specs/hm.dgm"), "--out", str(tmp_path), "--device", "cuda"]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err
