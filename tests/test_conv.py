"""Networks for images (specs/conv_digits.dgm): the compiled conv encoder and transposed-
conv decoder against the same computation written out with torch.nn.functional on the
module's own weights, students with scaled channels, the options (norm, residual blocks,
feature-map outputs), and the shape checks of every kind on valid shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import dgmc
from dgmc.distillation.distill import distill, fidelity
from dgmc.families.base import MIN_SCALE
from dgmc.lower import compile_model
from dgmc.networks import NETWORKS, Network

SPEC = Path(__file__).resolve().parent.parent / "specs" / "conv_digits.dgm"


def layers_of(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


def encoder(x: Tensor, net: nn.Module) -> Tensor:
    """conv(a, b): two stride-2 convolutions with ReLU, flatten, affine."""
    (c1, c2), (out,) = layers_of(net, nn.Conv2d), layers_of(net, nn.Linear)
    h = F.relu(F.conv2d(x.reshape(-1, 1, 8, 8), c1.weight, c1.bias, stride=2, padding=1))
    h = F.relu(F.conv2d(h, c2.weight, c2.bias, stride=2, padding=1))
    return F.linear(h.flatten(1), out.weight, out.bias)


def decoder(z: Tensor, net: nn.Module) -> Tensor:
    """deconv(a, b): affine to a channels at 2x2, ReLU, two stride-2 transposed convolutions."""
    (first,), (d1, d2) = layers_of(net, nn.Linear), layers_of(net, nn.ConvTranspose2d)
    h = F.relu(F.linear(z, first.weight, first.bias).reshape(len(z), d1.in_channels, 2, 2))
    h = F.relu(F.conv_transpose2d(h, d1.weight, d1.bias, stride=2, padding=1))
    return F.conv_transpose2d(h, d2.weight, d2.bias, stride=2, padding=1).flatten(1)


@pytest.mark.parametrize("width", [None, 0.5])
def test_conv_vae_matches_the_functional_reference(width: float | None) -> None:
    torch.manual_seed(0)
    model = compile_model(dgmc.load(SPEC), width)
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((16, 64), 0.3), generator=g)
    post = model.infer({"x": x}, generator=g)
    raw = encoder(x, model.nets["q_z"])
    torch.testing.assert_close(post.params["z"]["loc"], raw[:, :8])
    torch.testing.assert_close(post.params["z"]["scale"], F.softplus(raw[:, 8:]) + MIN_SCALE)
    trace = model.sample(16, generator=g)
    torch.testing.assert_close(trace.params["x"]["logits"], decoder(trace.values["z"], model.nets["p_x"]))
    channels = [m.out_channels for m in layers_of(model.nets["p_x"], nn.ConvTranspose2d)]
    assert channels == ([32, 1] if width is None else [16, 1])  # a student scales the hidden channels


def net(name: str, *hidden: int, **options) -> Network:
    kind = NETWORKS[name]
    return Network(name=name, hidden=hidden, options={**kind.defaults(), **options},
                   span=dgmc.load(SPEC).span)


@pytest.mark.parametrize(("network", "inputs", "output"), [
    (net("conv", 8, 16, norm="layer", res=1), ((3, 16, 16),), (10,)),
    (net("conv", 8), ((1, 8, 8), (2, 8, 8)), (6, 4, 4)),  # two images stacked, a feature map out
    (net("deconv", 16, 8, norm="layer", res=2), ((5,), (2, 3, 3)), (2, 16, 16)),
    (net("deconv", 8, kernel=3, stride=1), ((4,),), (3, 5, 7)),
    (net("deconv", 16, 8), ((8, 4, 4),), (2, 16, 16)),  # from a feature map of the starting size
])
def test_valid_shapes_fit_and_build_flat_modules(network: Network, inputs: tuple, output: tuple) -> None:
    kind = NETWORKS[network.name]
    assert kind.fits(network, inputs, output) is None
    module = kind.make(network, inputs, output)
    flat = sum(torch.Size(s).numel() for s in inputs)
    out = module(torch.randn(4, flat))
    assert out.shape == (4, torch.Size(output).numel())
    if network.options.get("norm") == "layer":
        assert layers_of(module, nn.GroupNorm)
    out.sum().backward()
    assert all(p.grad is not None for p in module.parameters())


def test_a_feature_map_starts_the_decoder_with_a_convolution() -> None:
    module = NETWORKS["deconv"].make(net("deconv", 16, 8), ((8, 4, 4),), (2, 16, 16))
    assert isinstance(module[1], nn.Conv2d) and module[1].in_channels == 8 and not layers_of(module, nn.Linear)
    vector = NETWORKS["deconv"].make(net("deconv", 16, 8), ((8, 2, 2),), (2, 16, 16))  # another size: affine
    assert isinstance(vector[0], nn.Linear) and vector[0].in_features == 32


def test_a_conv_student_distils_without_data() -> None:
    model = dgmc.load(SPEC)
    torch.manual_seed(0)
    teacher = compile_model(model).eval()
    torch.manual_seed(0)
    before = fidelity(model, teacher, compile_model(model, 0.5), None)["fidelity"]  # KL to the teacher
    student, _ = distill(model, teacher, 0.5, "ours", seed=0, steps=40, progress=False)
    after = fidelity(model, teacher, student, None)["fidelity"]
    assert after < 0.5 * before, (before, after)
    assert [m.out_channels for m in layers_of(student.nets["p_x"], nn.ConvTranspose2d)] == [16, 1]


def test_a_sample_does_not_depend_on_its_batch() -> None:
    """No batch statistics anywhere: row 0 is the same alone or among others."""
    network = net("conv", 8, 16, norm="layer", res=1)
    module = NETWORKS["conv"].make(network, ((1, 8, 8),), (4,))
    x = torch.randn(5, 64)
    torch.testing.assert_close(module(x)[:1], module(x[:1]))
