"""fk.show: three (or four) panels, titled with the classes, pyplot-free."""
import io

import numpy as np
import pytest
import torch

import foolkit as fk
from foolkit.attacks.base import AttackResult
from foolkit.report import figures

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model(resnet20):
    """The shipped ResNet-20 (conftest fixture)."""
    return resnet20


def fake_result(n=2, size=8, changed=None, trace=False, attack_name="FakeAttack", dense=False, success=True):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=g) * 0.8 + 0.1
    x_adv = x.clone()
    if dense:
        x_adv = (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    for (r, c) in changed or []:
        x_adv[:, :, r, c] = 1.0 - x[:, :, r, c]
    extra = {}
    if trace:
        t = torch.full((n, 6), float("nan"))
        t[:, :4] = torch.tensor([0.9, 0.6, 0.3, 0.05])
        extra["probability_trace"] = t
    return AttackResult(
        x=x, x_adv=x_adv, label=torch.tensor([3] * n), clean_label=torch.tensor([3] * n),
        attacked=torch.ones(n, dtype=torch.bool), success=torch.full((n,), success),
        adv_label=torch.tensor([5] * n), adv_confidence=torch.full((n,), 0.61),
        clean_confidence=torch.full((n,), 0.93), iterations=torch.full((n,), 4), attack_name=attack_name,
        params={"norm": float("inf")}, extra=extra)


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_show_real_deepfool_three_axes_titled_with_classes(model, bundled):
    from matplotlib.figure import Figure

    x, y = bundled
    result = fk.attacks.DeepFool(norm=2)(model, x[:3], y[:3])
    i = int(result.success.nonzero()[0, 0]) if result.success.any() else 0
    fig = fk.show(result, index=i, classes="cifar10")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    t = titles(fig)
    names = fk.data.class_names("cifar10")
    assert t[0].startswith("original: ") and names[int(result.clean_label[i])] in t[0]
    assert "perturbation" in t[1]
    assert t[2].startswith("adversarial: ") and names[int(result.adv_label[i])] in t[2]
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_show_is_pyplot_free_and_renders_in_jupyter():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = fk.show(fake_result(), classes=["c%d" % k for k in range(10)])
    assert plt.get_fignums() == before  # not registered with pyplot: no double display, no leak
    png = fig._repr_png_()  # what IPython shows for the value of a cell
    assert png[:4] == b"\x89PNG"
    assert titles(fig)[0].startswith("original: c3") and titles(fig)[2].startswith("adversarial: c5")


def test_show_without_class_names_and_index_checks():
    r = fake_result(n=2)
    assert "class 3" in titles(fk.show(r))[0]
    assert len(fk.show(r, index=-1).axes) == 3
    for bad in (2, -3):
        with pytest.raises(ValueError, match="out of range"):
            fk.show(r, index=bad)
    with pytest.raises(ValueError, match="unknown dataset"):
        fk.show(r, classes="mnist")


def test_onepixel_trace_adds_fourth_panel():
    fig = fk.show(fake_result(changed=[(2, 3)], trace=True, attack_name="OnePixel"), classes="cifar10")
    assert len(fig.axes) == 4
    assert "probability of label" in titles(fig)[3] and "cat" in titles(fig)[3]
    line = fig.axes[3].get_lines()[0]
    assert len(line.get_xdata()) == 4  # NaN generations (after the early stop) are left out


def test_sparse_results_mark_the_changed_pixels():
    sparse = fk.show(fake_result(changed=[(1, 1), (5, 6), (7, 0)]))
    adv_ax = sparse.axes[2]
    assert len(adv_ax.collections) == 1
    assert len(adv_ax.collections[0].get_offsets()) == 3
    assert "3 of 64 pixels changed" in sparse._suptitle.get_text()
    dense = fk.show(fake_result(dense=True))
    assert len(dense.axes[2].collections) == 0
    # many changed pixels of a sparse attack: outlined instead of circled, the image left as it is
    many = fk.show(fake_result(size=40, changed=[(r, c) for r in range(20) for c in range(20)], attack_name="SparseFool"))
    assert len(many.axes[2].collections) == 1 and len(many.axes[2].images) == 1
    from matplotlib.contour import ContourSet
    assert isinstance(many.axes[2].collections[0], ContourSet)  # an outline, not 400 circles


def test_verdicts_in_titles():
    assert "not fooled" in titles(fk.show(fake_result(success=False)))[2]
    r = fake_result()
    r.attacked[:] = False
    r.success[:] = False
    assert "not attacked" in titles(fk.show(r))[2]
    none = fake_result(changed=[])
    assert "perturbation: none" in titles(fk.show(none))[1]


# --- issue #16: numbers in titles and the perturbation's scale -----------------------------------------------
@pytest.mark.parametrize("fraction, text", [(0.9994, "99.9%"), (1 / 50176, "0.002%"), (0.99996, "99.996%"),
                                            (0.5, "50.0%"), (0.0, "0%"), (1.0, "100%"), (3e-9, "0.0000003%")])
def test_format_percent_examples(fraction, text):
    assert figures.format_percent(fraction) == text


def test_format_percent_never_scientific_never_rounds_to_0_or_100():
    for f in [10.0 ** -e for e in range(1, 9)] + [1 - 10.0 ** -e for e in range(1, 8)] + [0.01234, 0.99949, 0.9995]:
        text = figures.format_percent(f)
        assert "e" not in text.lower(), text
        value = float(text.rstrip("%").lstrip("<>"))
        assert value > 0 and (value < 100 or text.startswith(">")), (f, text)


def test_show_titles_format_percentages_without_scientific_notation():
    r = fake_result(size=224, changed=[(5, 7)])  # 1 of 50176 pixels
    r.clean_confidence[:] = 0.9994
    fig = fk.show(r)
    assert "1 of 50176 pixels changed (0.002%)" in fig._suptitle.get_text()
    assert "99.9% (class 3)" in titles(fig)[0] and "1e+02" not in titles(fig)[0]
    dense = fake_result(size=40, changed=[(i, j) for i in range(40) for j in range(40) if (i, j) != (0, 0)])
    text = fk.show(dense, mark_pixels=False)._suptitle.get_text()
    assert "1599 of 1600 pixels changed (99.9%)" in text and "e+" not in text


def test_amplify_is_one_function_with_a_stated_factor():
    from foolkit.report import plots

    assert plots.amplify is figures.amplify
    # all zero: drawn as it is, mid-grey, factor 1 (the same for tensors and arrays)
    for zero in (torch.zeros(3, 4, 4), np.zeros((3, 4, 4))):
        img, k = figures.amplify(zero)
        assert k == 1.0 and img.shape == (3, 4, 4) and np.all(img == 0.5)
    r = torch.zeros(3, 4, 4)
    r[0, 1, 1], r[2, 0, 0] = 0.8, -0.4  # peak 0.8 > 0.5: the picture is shrunk
    img, k = figures.amplify(r)
    assert k == pytest.approx(0.625) and img[0, 1, 1] == pytest.approx(1.0) and img[2, 0, 0] == pytest.approx(0.25)
    assert figures.scale_label(k) == "perturbation shrunk ×0.625"
    assert figures.scale_label(0.5 / 0.04) == "perturbation amplified ×12.5"
    assert figures.scale_label(0.5 / (0.5 / 255)) == "perturbation amplified ×255"
    assert figures.scale_label(1.0) == "perturbation ×1"
    assert figures.format_factor(12750.0) == "12750"  # never 1.27e+04
    res = fake_result(dense=True)
    res.x_adv[0, 0, 0, 0] = res.x[0, 0, 0, 0] + 0.8 if res.x[0, 0, 0, 0] < 0.2 else res.x[0, 0, 0, 0] - 0.8
    peak = float((res.x_adv[0] - res.x[0]).abs().max())
    assert titles(fk.show(res))[1].startswith(f"perturbation shrunk ×{figures.format_factor(0.5 / peak)}")


def test_sparsefool_title_shows_delta_and_lambda():
    r = fake_result(changed=[(1, 1)], attack_name="SparseFool")
    r.params = {"lambda_": 3.0, "delta": 10.0, "max_iter": 20, "overshoot": 0.02}
    text = fk.show(r)._suptitle.get_text()
    assert text.startswith("SparseFool(") and "lambda=3.0" in text and "delta=10.0" in text
