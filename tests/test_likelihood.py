"""The exact log-likelihood by enumerating discrete latents (`dgmc.evaluation.likelihood`): a mixture
computed by hand, the ELBO below it on average, and models it does not apply to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.datasets import load_split
from dgmc.evaluation.likelihood import MAX_JOINT, enumerable, exact_log_likelihood
from dgmc.training.objectives import _elbo_parts

ROOT = Path(__file__).resolve().parents[1]


def test_a_two_component_mixture_by_hand() -> None:
    model = dgmc.loads("""model mix {
      latent z : Bernoulli[1](probs = 0.3)
      observed x : Normal[1](scale = 0.5)
      z -> x via linear
      guide { x -> z }
    }""")
    compiled = dgmc.compile(model)
    x = torch.tensor([[-1.0], [0.2], [2.5]])
    net = compiled.nets["p_x"]
    means = [net(torch.tensor([[z]])).item() for z in (0.0, 1.0)]
    by_hand = torch.logsumexp(torch.stack([
        torch.log(torch.tensor(weight)) + torch.distributions.Normal(mean, 0.5).log_prob(x[:, 0])
        for weight, mean in zip((0.7, 0.3), means, strict=True)]), dim=0)
    torch.testing.assert_close(exact_log_likelihood(compiled, {"x": x}), by_hand)


def test_the_elbo_is_below_it_on_average() -> None:
    model = dgmc.load(ROOT / "specs/hm.dgm")
    torch.manual_seed(0)
    compiled = dgmc.compile(model)
    test = load_split(model).test
    exact = exact_log_likelihood(compiled, test, chunk=7)  # chunks that do not divide the rows
    assert exact.shape == (len(test["y1"]),) and torch.isfinite(exact).all()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo = torch.stack([-sum(_elbo_parts(compiled, test, generator).values()) for _ in range(200)]).mean(0)
    assert (elbo <= exact + 1e-3).all()


def test_models_without_an_enumerable_posterior_are_refused() -> None:
    for name in ("vae", "vrnn"):  # a continuous latent; time steps
        compiled = dgmc.compile(dgmc.load(ROOT / f"specs/{name}.dgm"))
        assert not enumerable(compiled)
        with pytest.raises(dgmc.UserError, match="no exact log-likelihood"):
            exact_log_likelihood(compiled, {})


SBN = """model sbn {
  data old_faithful(standardize) { y1 = eruptions, y2 = waiting }
  latent z : Bernoulli[40]
  observed y1 : Normal[1](scale = 0.5)
  observed y2 : Normal[1](scale = 0.5)
  z -> y1 via mlp(8)
  z -> y2 via mlp(8)
  guide { y1, y2 -> z via mlp(8) }
  train wake_sleep(steps = 2, batch = 32)
  distill(width = 0.5, seed = 0, method = ours, steps = 2)
}
"""


def test_a_40_bit_layer_is_counted_not_enumerated_and_the_run_says_so(tmp_path: Path) -> None:
    """2**40 joint values: the exact NLL is skipped with a note in the metrics and the
    report, never built (it once allocated 8 TB after training)."""
    spec = tmp_path / "sbn.dgm"
    spec.write_text(SBN)
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())
    note = f"its latents take {2 ** 40:,} joint values, more than the {MAX_JOINT:,} that are enumerated"
    assert [row.get("test_exact_nll_skipped") for row in rows] == [note, note]
    assert not any("test_exact_nll" in row for row in rows)
    assert f"Exact test NLL not computed: {note}." in (tmp_path / "run" / "report.md").read_text()
    compiled = dgmc.compile(dgmc.loads(SBN))
    with pytest.raises(dgmc.UserError, match=f"; {note}"):
        exact_log_likelihood(compiled, {})
