"""Per-layer Lipschitz constants in L2 and their product, the bound of the thesis's eq. 13.1.

``||phi(x) - phi(x + r)|| <= L ||r||`` with ``L = prod_k L_k`` (Szegedy et al. 2014, section
4.3). Every rule below is an upper bound on the layer's true L2 Lipschitz constant, except the
spectral norms of linear layers, which come from power iteration (see :func:`spectral_norm`):

- Linear, Conv2d (any padding, stride, dilation, groups), AvgPool2d, global average pooling:
  the operator norm ``sigma_max`` of the linear map (the bias does not matter), by power
  iteration on ``A^T A`` run until sigma changes by less than ``tol`` (relative). Power
  iteration approaches ``sigma_max`` from below, so this is an *estimate* (in practice exact
  to ~1e-6), not a certificate. Each row also carries ``certified = sqrt(||A||_1 ||A||_inf)``,
  the induced 1- and inf-norms of the exact operator (padding and stride included), which is
  a guaranteed but looser upper bound; ``LipschitzBounds.L_certified`` is their product.
- BatchNorm (eval mode): its diagonal scale, ``max |gamma| / sqrt(running_var + eps)``.
- ReLU, ReLU6, Dropout (eval), Identity, Flatten: 1; LeakyReLU: ``max(1, |slope|)``.
- MaxPool2d: ``sqrt(m)``, m = the most windows one input pixel belongs to (1 when windows do
  not overlap), since ``|max a - max b| <= ||a - b||_2`` on each window.
- The :class:`~foolkit.models.Normalized` wrapper: ``1 / min(std)``.
- Residual blocks ``relu(branch(x) + shortcut(x))``: ``L_branch + L_shortcut`` (1 + L_branch
  for an identity shortcut); concatenations ``cat([f(x), g(x)])``: ``sqrt(L_f^2 + L_g^2)``.

Supported networks: every CIFAR-10 architecture in :mod:`foolkit.models.architectures`
(ResNet ``BasicBlock``, DenseNet ``DenseLayer``/``Transition``, MobileNetV2
``InvertedResidual``, small Inception ``InceptionModule``/``DownsampleModule``) and any
``nn.Sequential`` of the layers above. Anything else is refused with the module's type named.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from ..models.architectures import (densenet_cifar, inception_small_cifar, mobilenetv2_cifar,
                                    resnet_cifar)
from ..models.wrappers import Normalized
from ..errors import InputError

Shape = tuple[int, ...]
LinearMap = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LayerBound:
    """One factor of the product: ``bound`` (the estimate used in ``L``) and ``certified``
    (a guaranteed upper bound, equal to ``bound`` for the exact diagonal/pointwise rules)."""

    name: str
    kind: str
    bound: float
    certified: float
    parts: list["LayerBound"] = field(default_factory=list)
    combine: str = "product"  # how ``parts`` make ``bound``: "product", "sum" or "cat"
    # the linear map (float64) and its input shape, for merging adjacent linear layers
    op: LinearMap | None = field(default=None, repr=False, compare=False)
    in_shape: Shape | None = field(default=None, repr=False, compare=False)


@dataclass
class LipschitzBounds:
    """Per-layer L2 Lipschitz bounds of a model for one input shape, in forward order.

    ``layers`` are the factors of eq. 13.1 (a residual or concatenating block is one factor;
    its ``parts`` hold the inner layers). ``L`` is the product of their ``bound``;
    ``L_certified`` the product of their ``certified`` values (always >= the true constant).
    """

    input_shape: Shape
    layers: list[LayerBound]

    @property
    def L(self) -> float:  # noqa: N802 -- the thesis's symbol
        return math.prod(layer.bound for layer in self.layers)

    @property
    def L_certified(self) -> float:  # noqa: N802
        return math.prod(layer.certified for layer in self.layers)

    def rows(self) -> list[tuple[str, str, float]]:
        """``(name, kind, bound)`` per layer, in forward order."""
        return [(layer.name, layer.kind, layer.bound) for layer in self.layers]


def _vjp(op: LinearMap, x: torch.Tensor) -> tuple[torch.Tensor, Callable[[torch.Tensor], tuple[torch.Tensor, ...]]]:
    """``(op(x), adjoint)``, ``adjoint(u)[0]`` being the vector-Jacobian product ``J^T u``."""
    out = torch.func.vjp(op, x)  # typed as 2 or 3 items (with has_aux); without aux it is 2
    return out[0], out[1]


def spectral_norm(op: LinearMap, shape: Shape, *, tol: float = 1e-7,
                  max_iter: int = 5000, seed: int = 0) -> float:
    """Largest singular value of the linear map ``op`` on inputs of ``shape`` (float64).

    Power iteration on ``A^T A`` (``A^T`` by a vector-Jacobian product), from 4 random starts
    at once, stopped when the estimate changes by less than ``tol`` (relative). The estimate
    increases to ``sigma_max`` from below.
    """
    g = torch.Generator().manual_seed(seed)
    v = torch.randn((4,) + tuple(shape[1:]), generator=g, dtype=torch.float64)
    _, adjoint = _vjp(op, torch.zeros_like(v))  # op is linear: one vjp serves all v
    sigma = 0.0
    for _ in range(max_iter):
        v = v / v.flatten(1).norm(dim=1).view(-1, *[1] * (v.dim() - 1))
        u = op(v)
        new = u.flatten(1).norm(dim=1).max().item()
        v = adjoint(u)[0]
        if abs(new - sigma) <= tol * max(new, 1e-300):
            return new
        sigma = new
    return sigma


def _norm_1_inf(op_abs: LinearMap, shape: Shape) -> float:
    """``sqrt(||A||_1 ||A||_inf)`` from ``|A|``: the row sums are ``|A| 1``, the column sums
    ``|A|^T 1`` (Hoelder's bound, always >= ``||A||_2``)."""
    ones = torch.ones((1,) + tuple(shape[1:]), dtype=torch.float64)
    rows, adjoint = _vjp(op_abs, ones)
    cols = adjoint(torch.ones_like(rows))[0]
    return math.sqrt(rows.max().item() * cols.max().item())


def _linear(name: str, kind: str, op: LinearMap, op_abs: LinearMap, shape: Shape) -> LayerBound:
    return LayerBound(name, kind, spectral_norm(op, shape), _norm_1_inf(op_abs, shape), op=op, in_shape=shape)


def _diagonal(name: str, kind: str, scale: torch.Tensor, shape: Shape) -> LayerBound:
    """A per-channel scale ``x * scale[c]``: its norm is ``max |scale|`` exactly."""
    view = scale.view(1, -1, *[1] * (len(shape) - 2))
    value = scale.abs().max().item()
    return LayerBound(name, kind, value, value, op=lambda x: x * view, in_shape=shape)


def _out_shape(module: nn.Module, shape: Shape) -> Shape:
    tensor = next(iter(module.parameters()), None)
    dtype = torch.float32 if tensor is None else tensor.dtype
    with torch.no_grad():
        return tuple(module(torch.zeros((1,) + tuple(shape[1:]), dtype=dtype)).shape)


def _exact(name: str, kind: str, value: float) -> LayerBound:
    return LayerBound(name, kind, float(value), float(value))


def _leaf(module: nn.Module, name: str, shape: Shape) -> LayerBound | None:
    """The rule for a single layer, or None when ``module`` is not a known leaf."""
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise InputError(f"lipschitz_bounds: {name}: Conv2d padding_mode={module.padding_mode!r} "
                             "is not supported (only 'zeros')")
        w = module.weight.detach().double()
        kw: dict[str, Any] = dict(stride=module.stride, padding=module.padding, dilation=module.dilation,
                                  groups=module.groups)
        return _linear(name, "conv", lambda x: F.conv2d(x, w, **kw), lambda x: F.conv2d(x, w.abs(), **kw), shape)
    if isinstance(module, nn.Linear):
        w = module.weight.detach().double()
        return _linear(name, "linear", lambda x: x @ w.T, lambda x: x @ w.abs().T, shape)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.training or module.running_var is None:
            raise InputError(f"lipschitz_bounds: {name}: BatchNorm must be in eval mode with running "
                             "statistics (call model.eval())")
        scale = torch.rsqrt(module.running_var.double() + module.eps)
        if module.affine:
            scale = scale * module.weight.detach().double()
        return _diagonal(name, "batchnorm", scale, shape)
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return _exact(name, type(module).__name__.lower(), 1.0)
    if isinstance(module, (nn.Identity, nn.Flatten, nn.Dropout)):
        if module.training and isinstance(module, nn.Dropout):
            raise InputError(f"lipschitz_bounds: {name}: Dropout must be in eval mode (call model.eval())")
        row = _exact(name, type(module).__name__.lower(), 1.0)
        row.op, row.in_shape = (lambda x: x.flatten(1)) if isinstance(module, nn.Flatten) else (lambda x: x), shape
        return row
    if isinstance(module, nn.LeakyReLU):
        return _exact(name, "leakyrelu", max(1.0, abs(module.negative_slope)))
    if isinstance(module, nn.MaxPool2d):
        return _exact(name, "maxpool", math.sqrt(_windows_per_pixel(module, shape)))
    if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        # an averaging operator: nonnegative entries, so |A| = A
        op = lambda x: module(x)  # noqa: E731
        return _linear(name, "avgpool", op, op, shape)
    return None


def _windows_per_pixel(pool: nn.MaxPool2d, shape: Shape) -> int:
    """The most pooling windows that contain one input pixel (padding cells excluded)."""
    if pool.ceil_mode:
        raise InputError("lipschitz_bounds: MaxPool2d(ceil_mode=True) is not supported")
    ones = torch.ones((1, 1) + tuple(shape[2:]), dtype=torch.float64)
    windows, adjoint = _vjp(lambda x: F.unfold(x, pool.kernel_size, pool.dilation, pool.padding, pool.stride), ones)
    return int(round(adjoint(torch.ones_like(windows))[0].max().item()))


def _global_avgpool(name: str, shape: Shape) -> LayerBound:
    # mean over H*W positions of each channel: sigma_max = 1/sqrt(H W) exactly
    value = 1.0 / math.sqrt(math.prod(shape[2:]))
    return LayerBound(name, "avgpool", value, value, op=lambda x: x.mean((2, 3)), in_shape=shape)


def _sequence(modules: Sequence[tuple[str, nn.Module]], shape: Shape) -> tuple[list[LayerBound], Shape]:
    out = []
    for name, module in modules:
        rows, shape = _bounds(module, name, shape)
        out.extend(rows)
    return out, shape


def _compose(name: str, kind: str, modules: Sequence[tuple[str, nn.Module]], shape: Shape) -> tuple[LayerBound, Shape]:
    parts, shape = _sequence(modules, shape)
    return LayerBound(name, kind, math.prod(p.bound for p in parts), math.prod(p.certified for p in parts),
                      parts), shape


def _children(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}.{n}" if prefix else n, m) for n, m in module.named_children()]


def _combine(name: str, kind: str, branches: list[LayerBound], how: str) -> LayerBound:
    if how == "sum":  # f(x) + g(x)
        bound, cert = sum(b.bound for b in branches), sum(b.certified for b in branches)
    else:  # cat([f(x), g(x)]): ||(df, dg)||^2 = ||df||^2 + ||dg||^2
        bound = math.sqrt(sum(b.bound ** 2 for b in branches))
        cert = math.sqrt(sum(b.certified ** 2 for b in branches))
    return LayerBound(name, kind, bound, cert, branches, combine=how)


def _bounds(module: nn.Module, name: str, shape: Shape) -> tuple[list[LayerBound], Shape]:
    """Bounds of ``module`` on inputs of ``shape`` as a list of factors, and its output shape.

    Sequentials are unrolled into the list (so a network's stages show block by block);
    blocks with branches are one factor each.
    """
    leaf = _leaf(module, name, shape)
    if leaf is not None:
        return [leaf], _out_shape(module, shape)
    if isinstance(module, Normalized):
        rows, out = _bounds(module.net, f"{name}.net" if name else "net", shape)
        return [_diagonal(name or "normalize", "normalize", 1.0 / module.std.double().flatten(), shape)] + rows, out
    if isinstance(module, nn.Sequential):
        return _sequence(_children(module, name), shape)
    if isinstance(module, resnet_cifar.BasicBlock):
        branch, out = _compose(f"{name}.branch", "branch", [(f"{name}.conv1", module.conv1), (f"{name}.bn1", module.bn1),
                               (f"{name}.relu", nn.ReLU()), (f"{name}.conv2", module.conv2),
                               (f"{name}.bn2", module.bn2)], shape)
        shortcut, _ = _compose(f"{name}.shortcut", "shortcut", _children(module.shortcut, f"{name}.shortcut"), shape)
        if not shortcut.parts:
            shortcut = _exact(f"{name}.shortcut", "identity", 1.0)
        return [_combine(name, "residual", [branch, shortcut], "sum")], out  # the final ReLU: 1
    if isinstance(module, mobilenetv2_cifar.InvertedResidual):
        branch, out = _compose(f"{name}.conv", "branch", _children(module.conv, f"{name}.conv"), shape)
        if not module.use_residual:
            return [branch], out
        return [_combine(name, "residual", [branch, _exact(f"{name}.shortcut", "identity", 1.0)], "sum")], out
    if isinstance(module, densenet_cifar.DenseLayer):
        branch, _ = _compose(f"{name}.branch", "branch", [(f"{name}.norm1", module.norm1), (f"{name}.relu1", nn.ReLU()),
                             (f"{name}.conv1", module.conv1), (f"{name}.norm2", module.norm2),
                             (f"{name}.relu2", nn.ReLU()), (f"{name}.conv2", module.conv2)], shape)
        out = _out_shape(module, shape)
        return [_combine(name, "concat", [_exact(f"{name}.identity", "identity", 1.0), branch], "cat")], out
    if isinstance(module, inception_small_cifar.InceptionModule):
        b1, _ = _compose(f"{name}.branch1x1", "branch", _children(module.branch1x1, f"{name}.branch1x1"), shape)
        b3, _ = _compose(f"{name}.branch3x3", "branch", _children(module.branch3x3, f"{name}.branch3x3"), shape)
        return [_combine(name, "concat", [b1, b3], "cat")], _out_shape(module, shape)
    if isinstance(module, inception_small_cifar.DownsampleModule):
        b3, _ = _compose(f"{name}.branch3x3", "branch", _children(module.branch3x3, f"{name}.branch3x3"), shape)
        pool = _leaf(module.pool, f"{name}.pool", shape)
        assert pool is not None  # a MaxPool2d always has a rule
        return [_combine(name, "concat", [b3, pool], "cat")], _out_shape(module, shape)
    if isinstance(module, resnet_cifar.ResNetCifar):
        rows, s = _sequence([(_join(name, n), m) for n, m in (("conv1", module.conv1), ("bn1", module.bn1),
                             ("relu", nn.ReLU()), ("layer1", module.layer1), ("layer2", module.layer2),
                             ("layer3", module.layer3))], shape)
        rows.append(_global_avgpool(_join(name, "pool"), s))
        tail, out = _bounds(module.fc, _join(name, "fc"), (s[0], s[1]))
        return rows + tail, out
    if isinstance(module, densenet_cifar.DenseNetCifar):
        rows, s = _bounds(module.features, _join(name, "features"), shape)
        rows += [_exact(_join(name, "relu"), "relu", 1.0), _global_avgpool(_join(name, "pool"), s)]
        tail, out = _bounds(module.classifier, _join(name, "classifier"), (s[0], s[1]))
        return rows + tail, out
    if isinstance(module, (mobilenetv2_cifar.MobileNetV2Cifar, inception_small_cifar.SmallInceptionCifar)):
        rows, s = _bounds(module.features, _join(name, "features"), shape)
        rows.append(_global_avgpool(_join(name, "pool"), s))
        tail, out = _bounds(module.classifier, _join(name, "classifier"), (s[0], s[1]))
        return rows + tail, out
    raise InputError(f"lipschitz_bounds: no Lipschitz rule for module {name or '<model>'!r} of type "
                     f"{type(module).__name__} (supported: foolkit's CIFAR-10 architectures and "
                     "Sequentials of Conv2d/Linear/BatchNorm/ReLU/pooling layers)")


def _merge_linear(rows: list[LayerBound]) -> list[LayerBound]:
    """Replace each run of adjacent linear layers (conv, BatchNorm, pooling, linear,
    normalisation) by one factor: the spectral norm of their composition, never above the
    product of theirs (e.g. conv followed by BatchNorm). Blocks are merged inside."""
    out: list[LayerBound] = []
    run: list[LayerBound] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            ops = [r.op for r in run if r.op is not None]  # every row of a run has one

            def op(x: torch.Tensor, ops: list[LinearMap] = ops) -> torch.Tensor:
                for f in ops:
                    x = f(x)
                return x
            shape = run[0].in_shape
            assert shape is not None  # set wherever op is
            bound = spectral_norm(op, shape)
            out.append(LayerBound("+".join(r.name for r in run), "+".join(r.kind for r in run), bound,
                                  math.prod(r.certified for r in run), list(run), op=op, in_shape=shape))
        run.clear()

    for row in rows:
        if row.op is not None and not row.parts:
            run.append(row)
            continue
        flush()
        if row.parts:
            parts = _merge_linear(row.parts)
            if row.combine == "product":
                bound = math.prod(p.bound for p in parts)
            elif row.combine == "sum":
                bound = sum(p.bound for p in parts)
            else:
                bound = math.sqrt(sum(p.bound ** 2 for p in parts))
            row = LayerBound(row.name, row.kind, min(bound, row.bound), row.certified, parts, row.combine)
        out.append(row)
    flush()
    return out


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def lipschitz_bounds(model: nn.Module, input_shape: Sequence[int], *, merge_linear: bool = False) -> LipschitzBounds:
    """Per-layer L2 Lipschitz bounds of ``model`` and their product ``L`` (thesis eq. 13.1).

    Args:
        model: a model in eval mode (a foolkit model, e.g. ``fk.models.load("cifar10/resnet20")``,
            or a ``nn.Sequential`` of supported layers); see the module docstring for the rules.
        input_shape: ``(C, H, W)`` or ``(N, C, H, W)``; the bounds of padded convolutions and
            of pooling depend on the spatial size.
        merge_linear: bound each run of adjacent linear layers (e.g. conv + BatchNorm, pool +
            classifier) by the spectral norm of their composition instead of the product of
            their norms: a much tighter ``L``, with fewer, merged factors.

    Returns:
        :class:`LipschitzBounds`: ``layers`` in forward order, ``L`` (power-iteration
        estimate of each linear layer's spectral norm; tight) and ``L_certified`` (guaranteed).

    Raises:
        ValueError: a module with no rule (its type is named), or BatchNorm/Dropout in training mode.

    Example:
        >>> b = fk.analysis.lipschitz_bounds(fk.models.load("cifar10/resnet20"), (3, 32, 32))
        >>> b.L, b.rows()[:2]
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or min(shape) < 1:
        raise InputError(f"lipschitz_bounds: input_shape must be (C, H, W) or (N, C, H, W), got {tuple(input_shape)}")
    layers, _ = _bounds(model, "", (1,) + shape[1:])
    if merge_linear:
        layers = _merge_linear(layers)
    return LipschitzBounds(shape[1:], layers)
