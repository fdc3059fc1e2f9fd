"""Image acquisition as a defense (thesis 13.2.1; Graese et al. 2016, the thesis's [13]).

A camera or a scanner never hands a classifier the exact pixels an attacker computed: the
image is shifted, cropped and resized, blurred, noisy and JPEG-compressed on the way.
:class:`Acquisition` wraps a model with those transformations (seeded, batched);
:func:`recovery_rate` measures the share of adversarial images whose label comes back
through them, and ``Acquisition(..., eot=k)`` is the wrapper an attacker who knows the
pipeline attacks (expectation over transformations, Athalye et al. 2018).
"""
from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from ..errors import InputError
from ..runtime.model_state import eval_mode

TRANSFORMS = ("translate", "noise", "blur", "crop_resize", "jpeg")


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip with Pillow (4:4:4, no chroma subsampling) of ``[B,3,H,W]`` images in [0,1];
    returns float32 ``[B,3,H,W]`` in [0,1], the 8-bit decoded pixels divided by 255."""
    u8 = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty_like(u8)
    for i, img in enumerate(u8):  # Pillow encodes one image at a time; there is no batched codec
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=0)
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2).to(x.dtype) / 255


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius ceil(3 sigma), reflect padding) of ``[B,C,H,W]``."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _affine(x: torch.Tensor, scale: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor) -> torch.Tensor:
    """Resample ``[B,C,H,W]`` at ``scale * grid + shift`` (normalised [-1,1] coordinates, bilinear,
    border padding): a differentiable translation, or a crop of side ``scale`` resized to the full image."""
    b = x.shape[0]
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = shift_x
    theta[:, 1, 2] = shift_y
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class Acquisition(nn.Module):
    """A model seen through a synthetic camera pipeline (thesis 13.2.1).

    Args:
        model: float ``[N,C,H,W]`` images in [0,1] -> logits ``[N,K]``.
        transforms: which transformations to apply, in this order (a subset of
            ``"translate", "noise", "blur", "crop_resize", "jpeg"``; empty: the model itself).
        seed: seeds the random draws; a wrapper draws from one generator, so the same sequence
            of calls on a fresh wrapper (or after :meth:`reset`) gives the same outputs.
        max_shift: translation, an integer number of pixels drawn per image and axis in
            ``[-max_shift, max_shift]`` (borders replicated).
        noise_std: Gaussian sensor noise (standard deviation in [0,1] pixel units; the result is clipped).
        blur_sigma: Gaussian blur (pixels; fixed, not random).
        crop_min: crop-and-resize keeps a random square of side in ``[crop_min, 1]`` of the image,
            at a random place, resized back to the full size (bilinear).
        jpeg_quality: JPEG compression quality 1-100 (Pillow, 4:4:4). JPEG has no gradient: the
            forward pass uses the decoded image, the backward pass the identity (straight-through
            estimator, BPDA of Athalye et al. 2018), so attacks through the wrapper still get gradients.
        eot: expectation over transformations: the logits are the mean over ``eot`` independent
            draws per image (the wrapper an attacker who knows the pipeline attacks).

    Input ``[N,C,H,W]`` in [0,1]; output ``[N,K]`` logits. Every transformation but JPEG is
    differentiable. Example:
        >>> defended = fk.defenses.Acquisition(model, seed=0)
        >>> fk.defenses.recovery_rate(model, result.x_adv, y, defended)
    """

    def __init__(self, model: nn.Module, transforms: Sequence[str] = TRANSFORMS, *, seed: int = 0,
                 max_shift: int = 2, noise_std: float = 0.02, blur_sigma: float = 0.5, crop_min: float = 0.85,
                 jpeg_quality: int = 75, eot: int = 1):
        super().__init__()
        if isinstance(transforms, str):
            transforms = (transforms,)
        unknown = [t for t in transforms if t not in TRANSFORMS]
        if unknown:
            raise InputError(f"Acquisition: unknown transform {unknown[0]!r}; known: {', '.join(TRANSFORMS)}")
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise InputError(f"Acquisition: max_shift must be an integer >= 0, got {max_shift!r}")
        if not (0 <= noise_std < math.inf) or not (0 <= blur_sigma < math.inf):
            raise InputError(f"Acquisition: noise_std and blur_sigma must be finite and >= 0, got "
                             f"{noise_std!r}, {blur_sigma!r}")
        if not (0 < crop_min <= 1):
            raise InputError(f"Acquisition: crop_min must lie in (0, 1], got {crop_min!r}")
        if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 100:
            raise InputError(f"Acquisition: jpeg_quality must be an integer in 1..100, got {jpeg_quality!r}")
        if isinstance(eot, bool) or not isinstance(eot, int) or eot < 1:
            raise InputError(f"Acquisition: eot must be an integer >= 1, got {eot!r}")
        self.model = model
        self.transforms = tuple(transforms)
        self.seed, self.max_shift, self.noise_std, self.blur_sigma = seed, max_shift, noise_std, blur_sigma
        self.crop_min, self.jpeg_quality, self.eot = crop_min, jpeg_quality, eot
        self.reset()

    def reset(self) -> None:
        """Restart the random draws from ``seed``."""
        self._generator = torch.Generator().manual_seed(self.seed)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the pipeline once to ``[B,C,H,W]`` images in [0,1] (a fresh draw per image);
        returns ``[B,C,H,W]`` in [0,1]."""
        g = self._generator
        b, _, h, w = x.shape
        for name in self.transforms:
            if name == "translate" and self.max_shift:
                d = torch.randint(-self.max_shift, self.max_shift + 1, (2, b), generator=g).to(x)
                # a shift of d pixels is 2d/size in normalised coordinates; the sign moves content by +d
                x = _affine(x, torch.ones(b, dtype=x.dtype, device=x.device), -2 * d[0] / w, -2 * d[1] / h)
            elif name == "noise" and self.noise_std:
                x = (x + self.noise_std * torch.randn(x.shape, generator=g).to(x)).clamp(0, 1)
            elif name == "blur" and self.blur_sigma:
                x = _gaussian_blur(x, self.blur_sigma)
            elif name == "crop_resize" and self.crop_min < 1:
                side = (self.crop_min + (1 - self.crop_min) * torch.rand(b, generator=g)).to(x)
                # the crop's centre may move by up to (1 - side) in normalised units and stay inside
                cx, cy = ((torch.rand(2, b, generator=g).to(x) * 2 - 1) * (1 - side))
                x = _affine(x, side, cx, cy)
            elif name == "jpeg":
                x = x + (_jpeg(x, self.jpeg_quality) - x).detach()  # straight-through: identity gradient
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.transforms:
            return self.model(x)
        if self.eot == 1:
            return self.model(self.transform(x))
        out = self.model(self.transform(x.repeat(self.eot, 1, 1, 1)))
        return out.view(self.eot, x.shape[0], -1).mean(0)


@torch.no_grad()
def recovery_rate(model: nn.Module, x_adv: torch.Tensor, labels: torch.Tensor, acquisition: nn.Module,
                  batch_size: int = 250) -> float | None:
    """Share of adversarial images that recover their label through the acquisition (thesis 13.2.1).

    Args:
        model: the undefended model (``[N,C,H,W]`` in [0,1] -> logits).
        x_adv: float ``[N,C,H,W]`` in [0,1], candidate adversarial images.
        labels: ``[N]`` true labels.
        acquisition: ``model`` seen through the pipeline, e.g. :class:`Acquisition` (its random
            draws advance; call ``reset()`` first for a repeatable measurement).
    Returns:
        Among the images of ``x_adv`` that ``model`` misclassifies (the adversarial ones), the
        fraction that ``acquisition`` classifies as ``labels``, in [0,1]; None when there is none.
    """
    if x_adv.dim() != 4 or labels.shape != (x_adv.shape[0],):
        raise InputError(f"recovery_rate: x_adv must be [N,C,H,W] and labels [N], got {tuple(x_adv.shape)} "
                         f"and {tuple(labels.shape)}")
    if len(x_adv) == 0:
        return None
    with eval_mode(model, acquisition):
        fooled, recovered = [], []
        for i in range(0, len(x_adv), batch_size):
            xb, yb = x_adv[i:i + batch_size], labels[i:i + batch_size].to(x_adv.device)
            fooled.append(model(xb).argmax(1) != yb)
            recovered.append(acquisition(xb).argmax(1) == yb)
    fooled_t, recovered_t = torch.cat(fooled), torch.cat(recovered)
    if not fooled_t.any():
        return None
    return (recovered_t & fooled_t).sum().item() / fooled_t.sum().item()
