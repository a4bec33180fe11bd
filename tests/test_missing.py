"""Missing values: a latent bound to data (M2's labels, observed in some rows and
inferred in the rest) and an observed node that misses values in some rows.

specs/m2.dgm's objective is held to a hand-written PyTorch reference on the same weights
and noise (the labelled rows' ELBO, the unlabelled rows' ELBO with y summed out under
q(y | x), and the classification term), written here with no use of dgmc; the loader's
missing rows (`labelled`, NaN in a file) and the rules have their own tests and golden
bad specs (tests/bad/81).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import references as ref
import torch
import torch.nn.functional as F
from torch import Tensor

import dgmc
from dgmc.datasets import load_split
from dgmc.evaluation.likelihood import label_accuracy
from dgmc.lower import compile_model
from dgmc.lower.module import CompiledModel
from dgmc.training.objectives import _elbo_parts, elbo, mle, negative_elbo

ROOT = Path(__file__).resolve().parents[1]
DTYPE = torch.float64
ROWS = 6


def m2_module(seed: int = 0) -> CompiledModel:
    torch.manual_seed(seed)
    return compile_model(dgmc.load(ROOT / "specs/m2.dgm")).to(DTYPE)


def m2_batch(seed: int) -> dict[str, Tensor]:
    """Six rows of binary pixels; labels in rows 0, 2 and 5, missing (NaN) in the rest."""
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((ROWS, 64), 0.3, dtype=DTYPE), generator=g)
    y = F.one_hot(torch.tensor([3, 0, 7, 1, 1, 9]), 10).to(DTYPE)
    y[[1, 3, 4]] = math.nan
    return {"x": x, "y": y}


def m2_reference(module: CompiledModel, x: Tensor, y: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
    """Per row: -ELBO and the classification term, by hand. q(y | x) = softmax(classify(x)),
    q(z | x, y) = N(enc(x, y)), p(y) uniform, p(z) = N(0, 1), p(x | y, z) = Bernoulli(dec(y, z));
    L(k) = log p(x | k, z_k) + log p(k) - KL(q(z | x, k) || p(z)) with z_k on the row's noise.
    A labelled row's ELBO is L(y); an unlabelled one's sum_k q(k | x) (L(k) - log q(k | x))."""
    classify = ref.ReluMLP.of(module.nets["q_y"], 64, 10, depth=1)
    enc = ref.ReluMLP.of(module.nets["q_z"], 74, 32, depth=2)
    dec = ref.ReluMLP.of(module.nets["p_x"], 26, 64, depth=2)
    log_q = torch.log_softmax(classify(x), -1)
    bounds = []
    for k in range(10):
        onehot = F.one_hot(torch.full((ROWS,), k), 10).to(DTYPE)
        qz = ref.normal_from_raw(enc(torch.cat([x, onehot], -1)), 16)
        z = ref.normal_sample(qz, eps)
        kl = 0.5 * (qz["scale"] ** 2 + qz["loc"] ** 2 - 1 - 2 * torch.log(qz["scale"])).sum(-1)
        bounds.append(ref.bernoulli_log_mass(x, {"logits": dec(torch.cat([onehot, z], -1))}) - math.log(10) - kl)
    bound = torch.stack(bounds, -1)  # [rows, k]
    labelled = ~torch.isnan(y).any(-1)
    label = torch.nan_to_num(y).argmax(-1)
    unlabelled = (log_q.exp() * (bound - log_q)).sum(-1)
    elbo_rows = torch.where(labelled, bound.gather(1, label[:, None])[:, 0], unlabelled)
    classification = torch.where(labelled, -log_q.gather(1, label[:, None])[:, 0], 0)
    return -elbo_rows, classification


def test_m2_objective_equals_the_hand_written_reference() -> None:
    module = m2_module()
    batch = m2_batch(1)
    parts = _elbo_parts(module, batch, torch.Generator().manual_seed(2))
    eps = module.draw(ROWS, torch.Generator().manual_seed(2), guide=True)["z"].to(DTYPE)  # the noise summed_out draws
    negative, classification = m2_reference(module, batch["x"], batch["y"], eps)
    got = sum(v for k, v in parts.items() if not k.startswith("class["))
    assert (got - negative).abs().max() < 1e-10
    assert (parts["class[y]"] - classification).abs().max() < 1e-10
    assert (parts["class[y]"][[1, 3, 4]] == 0).all()


def test_alpha_weighs_the_classification_term_and_the_reported_bound_hides_the_labels() -> None:
    module = m2_module()
    batch = m2_batch(3)
    loss, terms = elbo(module, batch, torch.Generator().manual_seed(4))
    alpha = module.ir.train.alpha
    assert alpha == 50
    bound = sum(v for k, v in terms.items() if k.startswith(("nll[", "kl[")))
    torch.testing.assert_close(loss.detach(), bound + alpha * terms["class[y]"])
    torch.testing.assert_close(terms["-elbo"], bound)
    hidden = negative_elbo(module, {"x": batch["x"]}, torch.Generator().manual_seed(5))
    assert negative_elbo(module, batch, torch.Generator().manual_seed(5)) == hidden  # labels left out


def test_labelled_hides_all_but_a_share_of_the_training_labels() -> None:
    model = dgmc.load(ROOT / "specs/m2.dgm")
    split = load_split(model)
    missing = torch.isnan(split.train["y"]).any(-1)
    assert abs(float((~missing).float().mean()) - 0.1) < 0.01
    assert not torch.isnan(split.test["y"]).any()  # the test rows keep theirs: accuracy is measured on them
    assert not torch.isnan(split.train["x"]).any()
    again = load_split(model)
    assert torch.equal(torch.isnan(again.train["y"]), torch.isnan(split.train["y"]))  # the same rows every time


def test_a_classifier_on_a_tenth_of_the_labels_drops_the_rest() -> None:
    """An observed node that nothing reads may miss values: its term counts 0 there."""
    text = (ROOT / "specs/classifier.dgm").read_text().replace("digits(scale)", "digits(scale, labelled = 0.1)")
    model = dgmc.loads(text)
    torch.manual_seed(0)
    module = compile_model(model)
    split = load_split(model)
    batch = {k: v[:50] for k, v in split.train.items()}
    loss, _ = mle(module, batch)
    there = ~torch.isnan(batch["y"]).any(-1)
    p = module.run({}, inputs={"x": batch["x"]}, given={"y": torch.nan_to_num(batch["y"])})
    expected = -(module.log_prob("y", p) * there).sum() / 50
    torch.testing.assert_close(loss, expected)
    assert "test_accuracy[y]" in label_accuracy(module, split.test)


def test_missing_values_in_a_file(tmp_path: Path) -> None:
    """Empty cells (NaN) are allowed in a column bound to a latent with a guide, and in one
    bound to an observed node no other node reads (its term is dropped there, the guide
    reads 0 there: the multimodal case), and refused, located and explained, in an input's."""
    csv = tmp_path / "rows.csv"
    lines = ["a,b,label,u"] + [f"{i % 3},{(i * 7) % 5},{'' if i % 4 else i % 2},{i % 2}" for i in range(40)]
    csv.write_text("\n".join(lines) + "\n")
    spec = tmp_path / "semi.dgm"
    spec.write_text("""model semi {
  data file { x = [a, b], y = onehot(label, classes = 2), u = u }
  input u : Real[1]
  latent y : Categorical[2](logits = 0)
  latent z : Normal[2](loc = 0, scale = 1)
  observed x : Normal[2]
  u, y, z -> x
  guide { x -> y  x, y -> z }
  train elbo(steps = 5, enumerate = [y])
}
""")
    from dgmc.datasets import with_data

    split = load_split(with_data(dgmc.load(spec), csv))
    assert torch.isnan(split.train["y"]).any() and not torch.isnan(split.train["x"]).any()
    csv.write_text(csv.read_text().replace("\n1,", "\n,", 1))  # x misses a value: its term is dropped there
    model = with_data(dgmc.load(spec), csv)
    split = load_split(model)
    both = {k: torch.cat([split.train[k], split.test[k]]) for k in ("x", "y", "u")}
    assert int(torch.isnan(both["x"]).any(-1).sum()) == 1
    torch.manual_seed(0)
    module = compile_model(model)
    parts = _elbo_parts(module, both, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v).all() for v in parts.values())
    assert float(parts["nll[x]"].detach()[torch.isnan(both["x"]).any(-1)]) == 0
    csv.write_text(csv.read_text().replace(",0\n", ",\n", 1))  # an input misses a value
    with pytest.raises(dgmc.DgmError, match="the input 'u' is given in every row"):
        load_split(with_data(dgmc.load(spec), csv))


SEMI_REGRESSION = """
model semireg {
  data old_faithful(standardize) { x = eruptions, y = waiting }
  latent y : Normal[1](loc = 0, scale = 1)  # a continuous latent, given in some rows
  latent z : Normal[1](loc = 0, scale = 1)
  observed x : Normal[1]
  y, z -> x via mlp(8)
  guide {
    x -> y via mlp(8)
    x, y -> z via mlp(8)
  }
  train elbo(steps = 10, alpha = 2)
}
"""


def normal_kl_standard(q: ref.Params) -> Tensor:
    return 0.5 * (q["scale"] ** 2 + q["loc"] ** 2 - 1 - 2 * torch.log(q["scale"])).sum(-1)


@pytest.mark.parametrize("interpret", [False, True])
def test_a_continuous_latent_given_in_some_rows_equals_the_hand_written_reference(interpret: bool) -> None:
    """y is drawn from q(y | x) (reparametrized) where the row misses it, and taken from
    the data where present: there its term is -log p(y) and `class[y]` is -log q(y | x)."""
    torch.manual_seed(0)
    module = compile_model(dgmc.loads(SEMI_REGRESSION)).to(DTYPE)
    module.interpret = interpret
    g = torch.Generator().manual_seed(7)
    x = torch.randn(ROWS, 1, generator=g, dtype=DTYPE)
    y = torch.randn(ROWS, 1, generator=g, dtype=DTYPE)
    y[[0, 3]] = math.nan
    parts = _elbo_parts(module, {"x": x, "y": y}, torch.Generator().manual_seed(8))
    noise = {k: v.to(DTYPE) for k, v in module.draw(ROWS, torch.Generator().manual_seed(8), guide=True).items()}
    q_y = ref.normal_from_raw(ref.ReluMLP.of(module.nets["q_y"], 1, 2, depth=1)(x), 1)
    there = ~torch.isnan(y).any(-1)
    value = torch.where(there[:, None], torch.nan_to_num(y), ref.normal_sample(q_y, noise["y"]))
    q_z = ref.normal_from_raw(ref.ReluMLP.of(module.nets["q_z"], 2, 2, depth=1)(torch.cat([x, value], -1)), 1)
    z = ref.normal_sample(q_z, noise["z"])
    p_x = ref.normal_from_raw(ref.ReluMLP.of(module.nets["p_x"], 2, 2, depth=1)(torch.cat([value, z], -1)), 1)
    standard = {"loc": torch.zeros_like(value), "scale": torch.ones_like(value)}
    expected = {
        "nll[x]": -ref.normal_log_density(x, p_x),
        "kl[y]": torch.where(there, -ref.normal_log_density(value, standard), normal_kl_standard(q_y)),
        "kl[z]": normal_kl_standard(q_z),
        "class[y]": torch.where(there, -ref.normal_log_density(value, q_y), 0),
    }
    assert set(parts) == set(expected)
    for key, want in expected.items():
        assert (parts[key] - want).abs().max() < 1e-10, key


MULTIMODAL = """
model multimodal {
  data digits(binarize, labelled = 0.3) { x = pixels, y = label, m = present(label) }
  input m : Binary[1]  # 1 where the row has its label: the guide's mask
  latent z : Normal[8](loc = 0, scale = 1)
  observed x : Bernoulli[64]
  observed y : Categorical[10]  # a second modality, missing in 70% of the training rows
  z -> x via mlp(16)
  z -> y via mlp(16)
  guide { x, y, m -> z via mlp(16) }
  train elbo(steps = 20)
}
"""


def test_a_guide_reads_a_modality_that_may_miss_through_its_mask() -> None:
    """`present(label)` is 1 exactly where the label survives `labelled`; y's term is 0
    where it is missing, and there the guide reads y as 0 beside the mask m = 0."""
    model = dgmc.loads(MULTIMODAL)
    split = load_split(model)
    there = ~torch.isnan(split.train["y"]).any(-1)
    assert torch.equal(split.train["m"][:, 0] == 1, there) and bool((split.test["m"] == 1).all())
    assert abs(float(there.float().mean()) - 0.3) < 0.01
    torch.manual_seed(0)
    module = compile_model(model)
    batch = {k: v[:32] for k, v in split.train.items()}
    parts = _elbo_parts(module, batch, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v).all() for v in parts.values())
    assert (parts["nll[y]"][~there[:32]] == 0).all() and (parts["nll[y]"][there[:32]] > 0).all()
    q = module.infer({**batch, "y": torch.nan_to_num(batch["y"])}, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(parts["kl[z]"], module.elbo_parts({**batch, "y": torch.nan_to_num(batch["y"])},
                                                                  torch.Generator().manual_seed(0))["kl[z]"])
    assert q.values["z"].shape == (32, 8)
