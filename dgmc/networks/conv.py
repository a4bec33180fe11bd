"""Network kinds for images: `conv` (an encoder: images to a vector, or to a smaller
feature map) and `deconv` (a decoder: anything to an image). Both take positional channel
widths, which a student's width scales like an mlp's hidden widths, and the options

    kernel = 4, stride = 2, padding = 1   each layer's convolution (the defaults halve, or
                                          double, the height and width)
    act = relu                            between layers
    norm = none | layer                   a per-example normalisation after each layer
                                          (never batch statistics: a sample must not
                                          depend on the rest of its batch)
    res = 0                               residual blocks (3x3, act, 3x3, plus the input)
                                          after each layer

`conv(32, 64)` on an image [1, 28, 28]: two strided convolutions, 1 -> 32 -> 64 channels,
28x28 -> 14x14 -> 7x7, then one affine map of the flattened features to the output (or,
when the output is a feature map of that height and width, a 1x1 convolution).
`deconv(64, 32)` to an image [k*C, 28, 28]: one affine map of the flattened inputs (or,
from one feature map of that size, a 3x3 convolution) to 64 channels at 7x7, then
transposed convolutions 64 -> 32 -> k*C channels, doubling the height and width each time
(so 28 must be a multiple of 2 ** 2). Several image parents of one height and width are
stacked on the channels. Modules map flat [B, in] to flat [B, out], like every network
kind.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import TYPE_CHECKING

from ..core.base import lazy_import
from .base import ACTIVATIONS, DEFAULT_ACTIVATION, Network, NetworkKind, Option, Shape, activation

if TYPE_CHECKING:
    from torch import Tensor, nn


torch = lazy_import("torch")

NORMS = ("none", "layer")
OPTIONS = (
    Option("kernel", "int", 4, minimum=1, doc="kernel size of every (transposed) convolution"),
    Option("stride", "int", 2, minimum=1, doc="stride of every (transposed) convolution"),
    Option("padding", "int", 1, minimum=0, doc="padding of every (transposed) convolution"),
    Option("act", "name", DEFAULT_ACTIVATION, choices=ACTIVATIONS, doc="activation between layers"),
    Option("norm", "name", "none", choices=NORMS, doc="per-example normalisation after each layer"),
    Option("res", "int", 0, minimum=0, doc="residual blocks after each layer"),
)
DEFAULT_CHANNELS = (32, 64)


def _shape_text(shape: Shape) -> str:
    return f"[{', '.join(map(str, shape))}]"


def _options(net: Network) -> tuple[int, int, int]:
    return int(net.options.get("kernel", 4)), int(net.options.get("stride", 2)), int(net.options.get("padding", 1))


def _conv_sizes(net: Network, size: int) -> list[int]:
    """The height (or width) after each convolution, starting with `size`."""
    kernel, stride, padding = _options(net)
    sizes = [size]
    for _ in _channels(net):
        sizes.append((sizes[-1] + 2 * padding - kernel) // stride + 1)
    return sizes


def _image_inputs(in_shapes: tuple[Shape, ...]) -> str | None:
    if not in_shapes or any(len(s) != 3 for s in in_shapes) or len({s[1:] for s in in_shapes}) > 1:
        given = ", ".join(_shape_text(s) for s in in_shapes) or "nothing"
        return f"it reads images [C, H, W] of one height and width, and is given {given}"
    return None


def conv_fits(net: Network, in_shapes: tuple[Shape, ...], out_shape: Shape) -> str | None:
    why = _image_inputs(in_shapes)
    if why:
        return why
    _, height, width = in_shapes[0]
    heights, widths = _conv_sizes(net, height), _conv_sizes(net, width)
    if min(heights[-1], widths[-1]) < 1:
        steps = " -> ".join(map(str, heights))
        return f"its {len(_channels(net))} convolutions shrink {height}x{width} below 1x1 ({steps})"
    if len(out_shape) == 3 and (heights[-1], widths[-1]) != out_shape[1:]:
        return (f"its convolutions turn {height}x{width} into {heights[-1]}x{widths[-1]}, "
                f"not the {out_shape[1]}x{out_shape[2]} of the output {_shape_text(out_shape)}")
    return None


def deconv_fits(net: Network, in_shapes: tuple[Shape, ...], out_shape: Shape) -> str | None:
    kernel, stride, padding = _options(net)
    if len(out_shape) != 3:
        return f"it draws images [C, H, W], and its output is {_shape_text(out_shape)}: use mlp for a vector"
    if kernel - 2 * padding != stride:
        return (f"each transposed convolution must multiply the height and width by the stride, so kernel "
                f"= stride + 2 * padding ({kernel} != {stride} + 2 * {padding})")
    layers = len(_channels(net))
    factor = stride ** layers
    if out_shape[1] % factor or out_shape[2] % factor:
        convolutions = "transposed convolution" + ("s" if layers > 1 else "")
        return (f"its {layers} {convolutions} multiply the height and width by {factor}, "
                f"which does not divide the output's {out_shape[1]}x{out_shape[2]}")
    return None


def _norm(net: Network, channels: int) -> list[nn.Module]:
    return [torch.nn.GroupNorm(1, channels)] if net.options.get("norm", "none") == "layer" else []


def _act(net: Network) -> nn.Module:
    return activation(str(net.options.get("act", DEFAULT_ACTIVATION)))


def _residual(net: Network, channels: int) -> list[nn.Module]:
    return [_residual_type()(torch.nn.Sequential(
        torch.nn.Conv2d(channels, channels, 3, padding=1), *_norm(net, channels), _act(net),
        torch.nn.Conv2d(channels, channels, 3, padding=1), *_norm(net, channels),
    )) for _ in range(int(net.options.get("res", 0)))]


@functools.cache
def _residual_type() -> type:
    """The residual block's class, made on first use: defining an `nn.Module` subclass
    needs torch, which `dgmc check` never imports."""

    class Residual(torch.nn.Module):
        """x + block(x)."""

        def __init__(self, block: nn.Module) -> None:
            super().__init__()
            self.block = block

        def forward(self, x: Tensor) -> Tensor:
            return x + self.block(x)

    return Residual


def _channels(net: Network) -> tuple[int, ...]:
    return net.hidden or DEFAULT_CHANNELS


def build_conv(net: Network, in_shapes: tuple[Shape, ...], out_shape: Shape) -> nn.Module:
    kernel, stride, padding = _options(net)
    channels = (sum(s[0] for s in in_shapes), *_channels(net))
    _, height, width = in_shapes[0]
    layers: list[nn.Module] = [torch.nn.Unflatten(1, (channels[0], height, width))]
    for a, b in itertools.pairwise(channels):
        layers += [torch.nn.Conv2d(a, b, kernel, stride, padding), *_norm(net, b), _act(net), *_residual(net, b)]
    if len(out_shape) == 3:
        layers += [torch.nn.Conv2d(channels[-1], out_shape[0], 1), torch.nn.Flatten()]
    else:
        final = _conv_sizes(net, height)[-1] * _conv_sizes(net, width)[-1] * channels[-1]
        layers += [torch.nn.Flatten(), torch.nn.Linear(final, out_shape[0])]
    return torch.nn.Sequential(*layers)


def _starts_from_map(in_shapes: tuple[Shape, ...], height: int, width: int) -> bool:
    return len(in_shapes) == 1 and len(in_shapes[0]) == 3 and in_shapes[0][1:] == (height, width)


def build_deconv(net: Network, in_shapes: tuple[Shape, ...], out_shape: Shape) -> nn.Module:
    kernel, stride, padding = _options(net)
    channels = (*_channels(net), out_shape[0])
    factor = stride ** (len(channels) - 1)
    height, width = out_shape[1] // factor, out_shape[2] // factor
    if _starts_from_map(in_shapes, height, width):  # a feature map of the starting size: a 3x3 convolution
        layers: list[nn.Module] = [torch.nn.Unflatten(1, in_shapes[0]),
                                   torch.nn.Conv2d(in_shapes[0][0], channels[0], 3, padding=1)]
    else:
        in_dim = sum(math.prod(s) for s in in_shapes)
        layers = [torch.nn.Linear(in_dim, channels[0] * height * width),
                  torch.nn.Unflatten(1, (channels[0], height, width))]
    layers += [_act(net), *_residual(net, channels[0])]
    for i, (a, b) in enumerate(itertools.pairwise(channels)):
        layers.append(torch.nn.ConvTranspose2d(a, b, kernel, stride, padding))
        if i < len(channels) - 2:  # the last layer gives the parameters: no norm, no activation
            layers += [*_norm(net, b), _act(net), *_residual(net, b)]
    layers.append(torch.nn.Flatten())
    return torch.nn.Sequential(*layers)


CONV = (
    NetworkKind("conv", build_conv, widths=True, default_widths=DEFAULT_CHANNELS, options=OPTIONS, shaped=True,
                fits=conv_fits, doc="convolutional encoder: images to a vector or a smaller feature map"),
    NetworkKind("deconv", build_deconv, widths=True, default_widths=DEFAULT_CHANNELS, options=OPTIONS, shaped=True,
                fits=deconv_fits, doc="decoder: an affine map to a small image, then transposed convolutions"),
)
