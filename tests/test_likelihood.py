"""The exact log-likelihood by enumerating discrete latents (`dgmc.likelihood`): a mixture
computed by hand, the ELBO below it on average, and models it does not apply to."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.datasets import load_split
from dgmc.likelihood import enumerable, exact_log_likelihood
from dgmc.objectives import _elbo_parts

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
