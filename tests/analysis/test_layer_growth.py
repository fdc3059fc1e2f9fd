import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.analysis import default_layers, layer_growth, plot_layer_growth


def _toy():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 12)).double().eval()


def test_linear_growth_is_the_analytic_ratio():
    model = _toy()
    w = model[1].weight.detach()
    _, s, vh = torch.linalg.svd(w, full_matrices=False)
    x = torch.rand(2, 3, 2, 2, dtype=torch.float64)
    # image 0 moved along the top right-singular vector, image 1 along the 5th: growth sigma_1, sigma_5
    r = torch.stack([0.01 * vh[0], 0.03 * vh[4]]).view_as(x)
    table = layer_growth(model, x, x + r, layers=["1"], n_random=8)
    assert table.layers == ["1", "logits"]
    for row in (0, 1):
        assert table.adversarial[row].tolist() == pytest.approx([s[0].item(), s[4].item()], rel=1e-4)
    # W is square: a random direction's growth lies between its smallest and largest singular values
    assert (table.random <= s[0] * (1 + 1e-6)).all() and (table.random >= s[-1] * (1 - 1e-6)).all()
    assert table.rows()[0][3] == pytest.approx((table.adversarial[0] / table.random[0]).median().item())


def test_unchanged_pairs_are_skipped_and_bad_input_refused():
    model, x = _toy(), torch.rand(3, 3, 2, 2, dtype=torch.float64)
    x_adv = x.clone()
    x_adv[1] += 0.01
    assert layer_growth(model, x, x_adv, layers=[]).skipped == 2
    with pytest.raises(ValueError, match="nothing to measure"):
        layer_growth(model, x, x.clone())
    with pytest.raises(ValueError, match="no submodule named 'nope'"):
        layer_growth(model, x, x_adv, layers=["nope"])


def test_resnet20_adversarial_growth_exceeds_random_at_the_logits(one_thread):
    model = fk.models.load("cifar10/resnet20")
    x, y = fk.data.load("cifar10", "test", n=8)
    result = fk.attacks.DeepFool(norm=2)(model, x, y)
    table = layer_growth(model, x, result.x_adv)
    assert table.layers[0] == "net.conv1" and table.layers[-2:] == ["net.fc:input", "logits"]
    assert len(table.layers) == len(default_layers(model)) + 1 == 13
    name, adv, rnd, ratio = table.rows()[-1]
    # DeepFool's direction is chosen to move the logits; random ones of the same norm barely do
    assert adv > rnd and ratio > 1
    fig = plot_layer_growth(table, "ResNet-20")
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].get_xticklabels()) == 13
