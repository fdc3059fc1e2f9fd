"""The thesis's setup as data, shared by every spec module: its four CIFAR-10 models (and the
compact members of their families that play them by default), its input normalisation, the
conversion of its units to ours, and the settings and image sets several experiments share.
The experiments themselves: ``specs_part3_fgsm_deepfool``, ``specs_part3_sparsefool_onepixel_universal``
and ``specs_stronger_part4``; their types: ``spec_types``.

INPUT SPACE: which units the thesis's numbers are in
=====================================================
The thesis's code (github.com/pabloac31/TFG: utils.py, adversarial_attacks.py, the notebook
cifar10_experiments.ipynb) loads CIFAR-10 with ``ToTensor()`` + ``Normalize(mean, std)``,
mean (0.4914, 0.4822, 0.4465), std **(0.2023, 0.1994, 0.2010)** (not the (0.2471, 0.2435,
0.2616) of shared/reference/README.md and foolkit's model cards), and attacks the normalised
tensor z = (x - mean) / std. What each printed quantity means:

* FGSM eps: **[0,1] pixel units.** The code multiplies sign(grad) by eps / std_c in z-space
  and clamps z to the image of [0,1], i.e. x_adv = clip(x + eps * sign, 0, 1). Evidence:
  eq. 12.1 / Table 12.2's no-clip column, 0.5542 = sqrt(3072) * 0.01, holds in any space, but
  the CLIP column does not: clipping to [0,1] a pixel-space step of eps with random signs
  removes 0.47 / 0.56 / 1.19 / 2.10 % of ||r||_2 at eps = 0.005 / 0.01 / 0.05 / 0.1 on the
  bundled 1,000 test images, against the printed 0.36 / 0.51 / 1.19 / 2.11 %; had eps been in
  z-units (a pixel step of eps * std ~ eps / 5) the loss would be 0.43 / 0.43 / 0.56 / 0.73 %.
  Also eps = 0.3 "too noticeable" (Fig. 12.1) fits 76/255 in pixels. Ours: eps unchanged.
* Delta-hat (every table): **pixel units.** ``attack_model`` takes ``de_scale(x_adv - x)``
  (the z-difference times std_c) before the norm. DeepFool's 1.34 on ResNet-50 is an RMS of
  0.024 (6/255) per value, "hardly perceptible"; One Pixel's Delta-hat <= sqrt(3) (text) only
  holds in pixel units. Directly comparable with foolkit's ``delta_2`` / ``delta_inf``.
* rho-hat: Delta / ||de_scale(z)|| = Delta / **||x - mean||** in pixel units, not ||x||.
  Delta/rho is 11.6-13.4 in Tables 12.3-12.4 (rho has 2 decimals), 0.5 in Table 12.5; on the bundled
  1,000 test images ||x - mean||_2 = 13.37, ||x - mean||_inf = 0.51, but ||x||_2 = 29.1,
  ||x||_inf = 0.95, ||z||_2 = 66.6. Compare with ``rho_2_centered`` / ``rho_inf_centered``.
* Universal xi: **normalised (z) units.** ``universal_perturbation`` projects v in z-space
  (``v * min(1, xi / ||v||)``, ``sign(v) * min(|v|, xi)``) and adds it to z without de-scaling;
  the notebook passes ``xi=3*5`` for Table 12.8's 15, i.e. a pixel radius 3 times 1/std ~ 5.
  In pixel units xi = 15 (L2) would exceed ||x - mean||_2 ~ 13.4, a perturbation larger than
  the image's own contrast, and xi = 0.5 (L-inf) would be +-128 levels. Conversion: a z-space
  length times std is a pixel length. std_c differ by < 1.5 %, so the z-ball is nearly a
  pixel ball of radius xi * 0.2009 (the mean std): **factor 1/0.2009 = 4.98**, not the ~4
  (1/0.2471) one would take from the reference README's std. Hence L2 xi = 15 -> 3.01
  (exact ellipsoid semi-axes 2.99-3.03), L-inf xi = 0.5 -> 0.1005 = 25.6/255 (per channel
  0.1012 / 0.0997 / 0.1005). ``thesis_xi`` does this conversion for every universal grid.
* SparseFool delta: **pixel levels out of 255** (``valid_bounds`` works on round(255 x)), as
  foolkit's ``delta``; lambda is dimensionless. One Pixel's RGB genes are pixels in [0,1].
* DeepFool has no size parameter (overshoot is a ratio) but minimises ||r|| in z-space; as
  std_c agree to 1.5 %, z-norms are pixel norms times ~4.98 and the minimal directions agree
  to about 1.5 %. Its printed Delta-hat is in pixel units (above).

Other differences between the thesis's code and foolkit's own algorithms (they can move the
numbers). The experiments run each attack's ``variant="thesis"``, which does what the thesis's
code did (FGSM's loss, DeepFool's single final clip, SparseFool's and the universal
perturbation's normalised space, One Pixel's resampling); foolkit's algorithms appear as second
rows of Tables 12.1-12.9 (``AttackConfig.compare``):

* FGSM's loss is ``F.nll_loss(logits, y)`` = -z_y (no log-softmax): the sign of -grad z_y,
  not of the cross-entropy gradient that foolkit's FGSM uses.
* DeepFool (Tables 12.3-12.5) clips x + 1.01 r to [0,1] once, at the end; foolkit's
  ``clip=True`` clips every iterate (so its clipped fooling rate can be higher).
* SparseFool's "Pert. (%)" is the median count of changed pixel-channel values over 3072
  (ResNet-50: 19 -> 0.62 %); foolkit's ``median_pixels_pct`` counts pixels over 1024.
* Universal fooling rates count every image (clean vs perturbed prediction, x + v unclipped
  in z-space); the "test set" rate is over all 10,000 images, X included. foolkit counts the
  correctly classified images only and clips x + v to [0,1].
* Times are per image (per pass for universal) on the author's Colab GPU: compare ranks only.
"""
from __future__ import annotations

from .spec_types import Images

# Thesis names -> foolkit registry names. Hi-res figures use IMAGENET_MODEL instead.
MODELS = {
    "ResNet-50": "cifar10/resnet50",
    "DenseNet-169": "cifar10/densenet169",
    "MobileNetV2": "cifar10/mobilenet_v2",
    "InceptionV3": "cifar10/inception_v3",
}
CIFAR_MODELS = tuple(MODELS.values())
# The compact member of each family that foolkit trains and ships: the default players of the
# thesis's four columns (``foolkit reproduce`` without --models).
COMPACT_MODELS = {
    "ResNet-50": "cifar10/resnet20",
    "DenseNet-169": "cifar10/densenet_bc40",
    "MobileNetV2": "cifar10/mobilenet_v2_050",
    "InceptionV3": "cifar10/inception_small_050",
}
IMAGENET_MODEL = "imagenet/efficientnet-lite0"

THESIS_MEAN = (0.4914, 0.4822, 0.4465)
THESIS_STD = (0.2023, 0.1994, 0.2010)  # the thesis code's Normalize std
CARD_STD = (0.2471, 0.2435, 0.2616)  # shared/reference/README.md, foolkit's cards
Z_TO_PIXEL = sum(THESIS_STD) / 3  # 0.2009: a thesis z-space length times this = pixel length


def thesis_xi(xi: float) -> float:
    """A universal-perturbation radius in the thesis's normalised units -> [0,1] pixel units."""
    return round(xi * Z_TO_PIXEL, 5)


def thesis_name(model: str) -> str:
    """foolkit registry name -> the thesis's name (the row key in thesis_numbers.toml)."""
    return {v: k for k, v in MODELS.items()}.get(model, model)


FULL_TEST = Images("cifar10-test", 10000, 1000)
PHOTOS = Images("natural-images", None, 2, note="thesis: freeimages.com photos, ImageNet-pretrained models")
# Fig. 12.3: eps raised from 0.01 by 0.01 until fooled (thesis notebook: at most 50 steps).
MIN_EPS_GRID = tuple(round(0.01 * k, 2) for k in range(1, 51))
# Every attack of a thesis table or figure runs the thesis code's algorithm (variant="thesis",
# see each attack's docstring); the tables where foolkit's own algorithm differs get a second
# row with it (``AttackConfig.compare``). The clean accuracy (FGSM at eps 0) has no variant.
THESIS = {"variant": "thesis"}
DEEPFOOL = {"overshoot": 0.01, "max_iter": 50, "candidates": 10, **THESIS}  # notebook params_deepfool
