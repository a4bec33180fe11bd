"""The importance-weighted bound (`train iwae(k = K)`, and the reported `test_iwae`) held
to a hand-written PyTorch IWAE of specs/iwae.dgm's VAE on the same weights and noise, and
its properties: IWAE_1 is the one-sample ELBO, the bound tightens with k, labels are
hidden from it as from the reported -ELBO."""

from __future__ import annotations

import math
from pathlib import Path

import references as ref
import torch

import dgmc
from dgmc.lower import compile_model
from dgmc.training.iwae import iwae, iwae_bound, iwae_metrics, log_weights
from dgmc.training.loop import fit
from dgmc.training.objectives import negative_elbo

ROOT = Path(__file__).resolve().parents[1]


def _vae(seed: int = 0):
    torch.manual_seed(seed)
    return compile_model(dgmc.load(ROOT / "specs/iwae.dgm"))


def _digits(rows: int, seed: int = 1) -> torch.Tensor:
    return torch.bernoulli(torch.full((rows, 64), 0.3), generator=torch.Generator().manual_seed(seed))


def _reference_bound(model, x: torch.Tensor, k: int, eps: torch.Tensor) -> torch.Tensor:
    """IWAE_k per row by hand: row i's draws are eps[i*k:(i+1)*k]."""
    vae = ref.VAE.of(model)
    copies = x.repeat_interleave(k, 0)
    q = vae.guide(copies, eps)
    z = q.values["z"]
    prior = {"loc": torch.zeros_like(z), "scale": torch.ones_like(z)}
    log_w = (ref.bernoulli_log_mass(copies, {"logits": vae.dec(z)}) + ref.normal_log_density(z, prior)
             - ref.normal_log_density(z, q.params["z"]))
    return torch.logsumexp(log_w.view(-1, k), 1) - math.log(k)


def test_iwae_objective_matches_a_hand_written_iwae() -> None:
    """The loss of `train iwae(k = 5)` is -mean IWAE_5 on the guide's noise, as written by
    hand; the logged -ELBO is minus the mean log weight."""
    model = _vae()
    assert model.ir.train.objective == "iwae" and model.ir.train.k == 5
    x = _digits(12)
    eps = model.draw(12 * 5, torch.Generator().manual_seed(3), guide=True)["z"]
    loss, terms = iwae(model, {"x": x}, torch.Generator().manual_seed(3))
    expected = _reference_bound(model, x, 5, eps)
    largest = float((loss.detach() + expected.mean()).abs())
    assert largest < 1e-4, largest
    torch.testing.assert_close(terms["-iwae"], loss.detach())
    weights = log_weights(model, {"x": x.repeat_interleave(5, 0)}, torch.Generator().manual_seed(3))
    torch.testing.assert_close(terms["-elbo"], -weights.mean())


def test_iwae_gradient_reaches_decoder_and_guide() -> None:
    model = _vae()
    loss, _ = iwae(model, {"x": _digits(8)}, torch.Generator().manual_seed(0))
    loss.backward()
    for name in ("p_x", "q_z"):
        grads = [p.grad for p in model.nets[name].parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name


def test_iwae_one_draw_is_the_sampled_elbo_and_more_draws_tighten_it() -> None:
    """IWAE_1 = log p(x, z) - log q(z | x) on one draw; averaged over rows, IWAE_k grows
    with k (Burda et al., theorem 1), and stays below log p(x) estimated with many draws."""
    model = _vae()
    x = _digits(64)
    one = iwae_bound(model, {"x": x}, 1, torch.Generator().manual_seed(0))
    same = log_weights(model, {"x": x}, torch.Generator().manual_seed(0))
    torch.testing.assert_close(one, same)
    with torch.no_grad():
        bounds = [float(iwae_bound(model, {"x": x}, k, torch.Generator().manual_seed(0)).mean()) for k in (1, 10, 200)]
    assert bounds[0] < bounds[1] < bounds[2], bounds


def test_reported_test_iwae_is_chunked_and_seeded() -> None:
    """The metric is the same however the rows are chunked, and on the same seed the same."""
    model = _vae()
    x = _digits(40)
    found = iwae_metrics(model, {"x": x}, seed=7, k=20)
    assert found["iwae_k"] == 20 and found == iwae_metrics(model, {"x": x}, seed=7, k=20)
    with torch.no_grad():
        whole = -float(iwae_bound(model, {"x": x}, 20, torch.Generator().manual_seed(7)).mean())
    assert abs(found["test_iwae"] - whole) < 1e-4


def test_training_by_iwae_lowers_it() -> None:
    model = _vae()
    x = _digits(256)
    before = iwae_metrics(model, {"x": x}, seed=0, k=10)["test_iwae"]
    fit(model, model.ir.train.model_copy(update={"batch": 64}), {"x": x}, steps=60, seed=0, progress=False)
    after = iwae_metrics(model, {"x": x}, seed=0, k=10)["test_iwae"]
    assert after < before - 1, (before, after)


def test_a_latent_summed_out_under_its_guide_is_drawn_from_it() -> None:
    """The GMM-VAE's class has a guide: the IWAE draws it from q(c | x) (no relaxation),
    and with 100 draws bounds the test NLL more tightly than the ELBO summed over c."""
    model = compile_model(dgmc.load(ROOT / "specs/gmvae.dgm"))
    x = {"x": _digits(32)}
    found = iwae_metrics(model, x, seed=0)
    assert math.isfinite(found["test_iwae"]) and found["iwae_k"] == 100
    assert found["test_iwae"] < negative_elbo(model, x, torch.Generator().manual_seed(0))


def test_a_latent_summed_out_of_the_model_leaves_no_proposal() -> None:
    """A latent with no guide, summed out of the model, has nothing to draw it from: no
    `test_iwae` (the exact log-likelihood or the ELBO stand)."""
    text = (ROOT / "specs/gmvae.dgm").read_text().replace("x -> c via mlp(H)", "").replace("x, c -> z", "x -> z")
    model = compile_model(dgmc.loads(text))
    assert model.ir.summed_out() == ("c",)
    assert iwae_metrics(model, {"x": _digits(4)}, seed=0) == {}


def test_labels_are_hidden_from_the_reported_iwae() -> None:
    """M2's label is a latent bound to data: the IWAE infers it on every row, as the
    reported -ELBO does, so the estimate is the same with and without labels; the API's
    `iwae_bound` agrees with the metric."""
    model = compile_model(dgmc.load(ROOT / "specs/m2.dgm"))
    x = _digits(16)
    labels = torch.nn.functional.one_hot(torch.arange(16) % 10, 10).float()
    with_labels = iwae_metrics(model, {"x": x, "y": labels}, seed=2, k=10)
    assert with_labels == iwae_metrics(model, {"x": x}, seed=2, k=10)
    per_row = dgmc.iwae_bound(model, {"x": x, "y": labels}, k=10, seed=2)
    assert abs(-float(per_row.mean()) - with_labels["test_iwae"]) < 1e-4
