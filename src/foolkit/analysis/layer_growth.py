"""Where along a network a perturbation grows: ``||a_l(x + r) - a_l(x)|| / ||r||`` per layer l,
for adversarial ``r`` against random ``r`` of the same L2 norm (the empirical side of the
thesis's 13.1.1: "instabilities can appear as soon as in the first convolutional layer").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from ..models.architectures import densenet_cifar, inception_small_cifar, mobilenetv2_cifar, resnet_cifar
from ..models.wrappers import Normalized
from ..errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOGITS = "logits"


@dataclass
class GrowthTable:
    """Per-layer growth of adversarial and random perturbations.

    Attributes:
        layers: layer names in forward order; the last is ``"logits"`` (the model's output).
        adversarial: float64 ``[L, M]``, ``||a_l(x_adv) - a_l(x)|| / ||x_adv - x||`` for the M
            images whose adversarial differs from the clean one.
        random: float64 ``[L, M]``, the same for ``x + r`` with ``r`` random of the same norm
            (mean over ``n_random`` draws).
        skipped: images dropped because ``x_adv == x`` (attack failed or not attacked).
    """

    layers: list[str]
    adversarial: torch.Tensor
    random: torch.Tensor
    skipped: int = 0

    def rows(self) -> list[tuple[str, float, float, float]]:
        """``(layer, median adversarial growth, median random growth, median per-image ratio)``."""
        ratio = (self.adversarial / self.random).median(dim=1).values
        adv, rnd = self.adversarial.median(dim=1).values, self.random.median(dim=1).values
        return [(n, a.item(), r.item(), q.item()) for n, a, r, q in zip(self.layers, adv, rnd, ratio)]

    def first_amplified(self, factor: float = 2.0) -> str | None:
        """The first layer whose median adversarial/random ratio is at least ``factor``, or None."""
        return next((name for name, _, _, q in self.rows() if q >= factor), None)


def default_layers(model: nn.Module) -> list[str]:
    """Names (as in ``model.named_modules()``) of the top-level stages of a foolkit CIFAR-10
    network: the stem, every residual/dense/inception block, and the classifier's input (the
    pooled features). Other models: their top-level children (in registration order)."""
    prefix, net = ("net.", model.net) if isinstance(model, Normalized) else ("", model)
    if isinstance(net, resnet_cifar.ResNetCifar):
        names = ["conv1", "bn1"] + [f"{s}.{i}" for s in ("layer1", "layer2", "layer3")
                                    for i, _ in enumerate(getattr(net, s))] + ["fc:input"]
    elif isinstance(net, (densenet_cifar.DenseNetCifar, mobilenetv2_cifar.MobileNetV2Cifar,
                          inception_small_cifar.SmallInceptionCifar)):
        names = [f"features.{n}" for n, _ in net.features.named_children()] + ["classifier:input"]
    else:
        names = [n for n, _ in net.named_children()]
    return [prefix + n for n in names]


def layer_growth(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, layers: Sequence[str] | None = None,
                 *, n_random: int = 4, seed: int = 0) -> GrowthTable:
    """Growth ``||a_l(x') - a_l(x)|| / ||x' - x||`` of adversarial and random perturbations per layer.

    Args:
        model: a model in eval mode (float ``[N,C,H,W]`` images in [0,1] -> logits).
        x, x_adv: clean and adversarial images, float ``[N,C,H,W]``; pairs with ``x_adv == x``
            are dropped (counted in ``skipped``).
        layers: names of submodules (``model.named_modules()``) whose outputs are measured;
            ``"name:input"`` measures a module's input instead (e.g. the pooled features
            before the classifier). Default :func:`default_layers`. The logits always come last.
        n_random: random directions per image (Gaussian, rescaled to ``||x_adv - x||`` per
            image; not clipped to [0,1], so the norms match exactly).
        seed: seeds the random directions.

    Returns:
        :class:`GrowthTable`.

    Example:
        >>> r = fk.attacks.DeepFool(norm=2)(model, x)
        >>> fk.analysis.layer_growth(model, x, r.x_adv).rows()
    """
    if x.shape != x_adv.shape or x.dim() != 4:
        raise InputError(f"layer_growth: x and x_adv must be [N,C,H,W] of one shape, got "
                         f"{tuple(x.shape)} and {tuple(x_adv.shape)}")
    if n_random < 1:
        raise InputError(f"layer_growth: n_random must be >= 1, got {n_random}")
    names = list(default_layers(model) if layers is None else layers)
    modules = dict(model.named_modules())
    x, x_adv = x.detach(), x_adv.detach().to(x.dtype)
    delta = x_adv - x
    norm = delta.flatten(1).norm(dim=1)
    keep = norm > 0
    if not keep.any():
        raise InputError("layer_growth: every x_adv equals its x: nothing to measure")
    x, delta, norm = x[keep], delta[keep], norm[keep]
    n = len(x)
    g = torch.Generator().manual_seed(seed)
    r = torch.randn((n_random * n,) + tuple(x.shape[1:]), generator=g, dtype=x.dtype)
    r = r * (norm.repeat(n_random) / r.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)
    batch = torch.cat([x, x + delta, x.repeat(n_random, 1, 1, 1) + r])

    captured: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in names:
            module_name, _, where = name.partition(":")
            if module_name not in modules or where not in ("", "input"):
                raise InputError(f"layer_growth: no submodule named {name!r} in {type(model).__name__}")

            def hook(mod: nn.Module, args: tuple[Any, ...], out: torch.Tensor, name: str = name,
                     where: str = where) -> None:
                # clone: a following in-place ReLU would otherwise change what was stored
                captured[name] = (args[0] if where else out).detach().flatten(1).double().clone()
            handles.append(modules[module_name].register_forward_hook(hook))
        with torch.no_grad():
            captured[LOGITS] = model(batch).detach().double()
    finally:
        for h in handles:
            h.remove()
    names.append(LOGITS)
    adv, rnd = [], []
    for name in names:
        a = captured[name]
        clean = a[:n]
        adv.append((a[n:2 * n] - clean).norm(dim=1) / norm)
        d = (a[2 * n:] - clean.repeat(n_random, 1)).norm(dim=1) / norm.repeat(n_random)
        rnd.append(d.view(n_random, n).mean(0))
    return GrowthTable(names, torch.stack(adv), torch.stack(rnd), int((~keep).sum()))


def plot_layer_growth(table: GrowthTable, title: str = "") -> Figure:
    """Median growth per layer (log scale), adversarial vs random, with interquartile bands.

    Returns a ``matplotlib.figure.Figure`` (Agg canvas; pyplot is not used).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 0.45 * len(table.layers)), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = range(len(table.layers))
    for values, label, color in ((table.adversarial, "adversarial", "tab:red"), (table.random, "random, same norm", "tab:blue")):
        q = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75], dtype=values.dtype), dim=1).numpy()
        ax.plot(steps, q[1], marker="o", color=color, label=label)
        ax.fill_between(steps, q[0], q[2], color=color, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xticks(list(steps))
    ax.set_xticklabels([n.removeprefix("net.") for n in table.layers], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("||Δ activation|| / ||Δ input||")
    ax.set_title(title or f"Layer growth ({table.adversarial.shape[1]} images)")
    ax.legend()
    fig.tight_layout()
    return fig
