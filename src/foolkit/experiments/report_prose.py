"""The fixed text of the reproduction report: how the thesis's input space and units map to
foolkit's (``INPUT_SPACE``), where foolkit's algorithms differ from the thesis's code
(``DIFFERENCES``) and what the thesis's variants cannot do (``VARIANT_LIMITS``)."""
from __future__ import annotations

from .thesis_setup import CARD_STD, THESIS_MEAN, THESIS_STD, Z_TO_PIXEL

INPUT_SPACE = [
    "The thesis's code (github.com/pabloac31/TFG: utils.py, adversarial_attacks.py, the notebooks) loads CIFAR-10 "
    "with ToTensor() + Normalize(mean, std), mean ({}), std ({}), and runs DeepFool, SparseFool and the universal "
    "perturbations on the normalised tensor z = (x - mean) / std: their L2 steps and L∞ sign steps, their "
    "overshoot and the universal radius ξ are taken in z, not in pixels. FGSM adds eps · sign(∇) / std in z "
    "and clamps z to the image of [0,1], i.e. x_adv = clip(x + eps · sign(∇), 0, 1): its eps is in [0,1] pixel "
    "units. Every Δ̂ is measured after de-scaling (z-difference × std), so all Δ̂ are pixel norms, and ρ̂ = Δ̂ / "
    "‖x − mean‖ (pixel units; foolkit's rho_2_centered / rho_inf_centered).".format(
        ", ".join(map(str, THESIS_MEAN)), ", ".join(map(str, THESIS_STD))),
    "foolkit works in [0,1] pixel space throughout: models take x in [0,1] and normalise inside. Conversion "
    "applied here: FGSM's eps and SparseFool's δ (8-bit levels) are unchanged; the universal radii ξ are "
    "converted from the thesis's z-units to pixels by × {:.4f} (the mean of its std; the per-channel std differ "
    "by < 1.5 %, so its z-ball is a pixel ball up to 1.5 %): L2 ξ = 15 → 3.01, L∞ ξ = 0.5 → 0.1005 (25.6/255). "
    "The thesis's variants (variant=\"thesis\", the main rows here) run DeepFool, SparseFool and the universal "
    "perturbation in the model's own normalised space, with the mean and std of its fk.models.Normalized "
    "wrapper (foolkit's models: their cards' std; a checkpoint loaded with normalization=\"thesis\": the "
    "thesis's std), and take the universal ξ in those units (the pixel radius above divided by the model's "
    "mean std). foolkit's own algorithms (the second rows) search in pixel space; as each set of std agrees "
    "across channels to 1.5 % (thesis) or 7 % (cards), the two geometries nearly agree.".format(Z_TO_PIXEL),
    "The checkpoints of the thesis were trained with std ({}) (the reference README and foolkit's model cards) "
    "but the thesis's attack code fed them z computed with std ({}): passing the original checkpoints through "
    "foolkit's default input pipeline is therefore not the thesis's input pipeline.".format(
        ", ".join(map(str, CARD_STD)), ", ".join(map(str, THESIS_STD))),
]

DIFFERENCES = [
    ("DeepFool (Tables 12.3-12.5)",
     "thesis: all nine other classes, ranked once at the start; linearisation at x + Σr; the stopping test on the "
     "unclipped x + (1+η)·Σr; one clip to [0,1] at the very end; the returned point is x + 1.01·Σr. foolkit "
     "(default): clips every iterate, tests the clipped point, linearises at x + (1+η)·Σr and prunes to the 3 "
     "closest candidate classes after step 1. Because foolkit tests the point it returns, every image it "
     "reports as fooled is fooled; the thesis's final clip can undo a crossing found on the unclipped point. "
     "This is why the thesis's Table 12.3 shows 92-96 % fooling with clipping and foolkit's algorithm 100 % (its "
     "second rows in Tables 12.3-12.5)."),
    ("Input space", "the thesis runs DeepFool, SparseFool and the universal perturbations in the normalised "
                    "space z (see Input space and units); foolkit in [0,1] pixels."),
    ("FGSM", "the thesis's loss is nll_loss on the logits, i.e. -z_y (no log-softmax); foolkit's FGSM uses the "
             "cross-entropy. The two gradients differ by the softmax-weighted sum of the other logits' "
             "gradients, so the signs (and the fooling rates) can differ."),
    ("Universal perturbations (Tables 12.8-12.10)",
     "the thesis returns the best pass's v (v_best), attacks only images whose prediction equals the true "
     "label, and its fooling rate counts ALL images, pred(x+v) ≠ pred(x), with x + v unclipped (in z). foolkit "
     "(default) returns the last pass's v, attacks every image of X that v does not yet fool, reports fooling "
     "rates over the correctly classified images only (pred(clip(x+v)) ≠ y) and clips x + v to [0,1]."),
    ("One Pixel (Table 12.7)",
     "the thesis resamples out-of-box children (evolve(..., strategy=\"resample\")) and reports as iterations "
     "the loop index (at most iters − 1); foolkit clips children to the box and counts generations run "
     "(at most iters)."),
    ("SparseFool (Table 12.6)", "the thesis's 'Pert. (%)' is the median count of changed pixel-channel values "
                                "over 3,072; foolkit reports the same (median_values_pct)."),
    ("Checkpoints", "the thesis fed its checkpoints z computed with std (0.2023, 0.1994, 0.2010) although they "
                    "were trained with std (0.2471, 0.2435, 0.2616)."),
]


VARIANT_LIMITS = (
    "Which variant where: every table and figure runs the thesis's variant, the claims are judged on it, and "
    "Tables 12.1-12.9 add foolkit's algorithm as second rows (fooling rate, Δ̂ / ρ̂, time and the table's other "
    "columns), on a smaller sample where the mode says so in the experiment's notes. Limits of the thesis's "
    "variants: DeepFool's has no targeted mode and only p = 2 and ∞ (no experiment of the thesis needs "
    "more); the universal perturbation's runs one image at a time (mode \"faithful\"), with the inner DeepFool in "
    "the ball's own norm, and takes ξ in the model's normalised units: reproduce passes the pixel radius of the "
    "thesis's ξ (ξ × 0.2009) divided by the model's mean std, so a model normalised with the thesis's std gets "
    "the thesis's 15 and 0.5 back; One Pixel's has a targeted mode (Fig. 12.17 uses it). Table 12.10 (the "
    "transfer matrix) uses the thesis's perturbations only (x + v unclipped, as its code): foolkit's would cost "
    "another models × models evaluation passes; Table 12.8 shows foolkit's perturbation on each model itself. "
    "The universal perturbation is fitted with the labels of X, so the thesis's variant attacks only the images "
    "of X its model classifies correctly, as the thesis's code does.")
