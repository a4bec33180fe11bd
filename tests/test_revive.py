"""Dead ReLU units: found on a probe batch, revived without changing the function."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import dgmc
from dgmc.cli import main
from dgmc.distillation.distill import distill
from dgmc.distillation.revive import dead_units, revive

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("make,probe,unit", [
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), (256, 3), 1),
    (lambda: nn.Sequential(nn.Conv2d(2, 5, 3), nn.ReLU(), nn.Conv2d(5, 1, 1)), (32, 2, 6, 6), 3),
    (lambda: nn.Sequential(nn.ConvTranspose2d(2, 5, 3), nn.ReLU(), nn.ConvTranspose2d(5, 1, 1)), (32, 2, 4, 4), 2),
], ids=["linear", "conv", "deconv"])
def test_a_dead_unit_is_found_and_revived_without_changing_the_output(make, probe, unit: int) -> None:
    torch.manual_seed(0)
    net = make()
    with torch.no_grad():  # kill one unit (its output axis: 0 for Linear and Conv2d, 1 for ConvTranspose2d)
        weight = net[0].weight.transpose(0, 1) if isinstance(net[0], nn.ConvTranspose2d) else net[0].weight
        weight[unit] = 0
        net[0].bias[unit] = -1
    x = torch.randn(probe)
    found = dead_units(net, lambda: net(x))
    assert [d.units.tolist() for d in found] == [[unit]] and not found[0].whole
    before = net(x).detach()
    assert revive(found, torch.Generator().manual_seed(1)) == 1
    assert torch.equal(net(x), before)  # outgoing weights zeroed: the same function
    hidden = net[0](x).detach()
    active = (hidden.movedim(1 if hidden.dim() > 2 else -1, 0)[unit] > 0).float().mean()
    assert 0.3 < active < 0.7  # centred on the probe: active on about half of it
    assert dead_units(net, lambda: net(x)) == []


def test_a_layer_all_of_whose_units_are_dead_is_whole() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.fill_(-1)
    x = torch.randn(64, 3)
    found = dead_units(net, lambda: net(x))
    assert len(found) == 1 and found[0].whole  # the output no longer depends on x
    assert revive(found, torch.Generator().manual_seed(0)) == 2 and dead_units(net, lambda: net(x)) == []


def test_no_dead_unit_no_change() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(512, 3)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert revive(dead_units(net, lambda: net(x)), torch.Generator()) == 0
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_distillation_revives_the_dead_units_of_a_small_student() -> None:
    """specs/hm.dgm's student at seed 9 starts with a dead unit in y2's network (width 2)."""
    model = dgmc.load(ROOT / "specs/hm.dgm")
    model = model.model_copy(update={"distill": model.distill.model_copy(update={"revive": 20})})
    torch.manual_seed(0)
    teacher = dgmc.compile(model).eval()
    _, history = distill(model, teacher, 0.25, "ours", seed=9, steps=45, progress=False, lam=1.0)
    assert len(history["revived"]) == 45 and sum(history["revived"]) >= 1
    assert all(v == 0 for i, v in enumerate(history["revived"]) if i not in (20, 40))  # every 20 steps only


def test_revive_is_a_spec_and_command_line_setting(capsys) -> None:
    spec = (ROOT / "specs/hm.dgm").read_text().replace("seed = [0, 1, 2])", "seed = [0, 1, 2], revive = 50)")
    assert dgmc.loads(spec).distill.revive == 50
    with pytest.raises(dgmc.DgmError, match="revive must be an integer >= 0"):
        dgmc.loads(spec.replace("revive = 50", "revive = -1"))
    assert main(["distill", str(ROOT / "specs/hm.dgm"), "--teacher", "x.pt", "--revive", "-3"]) == 1
    assert "--revive must be an integer >= 0, not -3" in capsys.readouterr().err
