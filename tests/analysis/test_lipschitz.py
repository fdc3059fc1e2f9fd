import math

import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.analysis import lipschitz_bounds

# power iteration to tol 1e-7 lands within ~1e-6 of sigma_max; 1e-3 leaves room for near-degenerate spectra
REL = 1e-3


def _matrix(f, shape):
    """The explicit matrix of the linear map f on inputs of ``shape`` (columns = f(basis))."""
    d = math.prod(shape)
    basis = torch.eye(d, dtype=torch.float64).view(d, *shape)
    return f(basis).reshape(d, -1).T


def test_linear_bound_is_its_largest_singular_value():
    torch.manual_seed(0)
    layer = nn.Linear(20, 7).double()
    b = lipschitz_bounds(nn.Sequential(layer), (1, 1, 20)).layers[0]
    sigma = torch.linalg.svdvals(layer.weight.detach())[0].item()
    assert b.kind == "linear"
    assert b.bound == pytest.approx(sigma, rel=REL)
    assert b.certified >= sigma * (1 - 1e-9)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(stride=1, padding=2, dilation=2),
                                dict(stride=2, padding=1, groups=2)])
def test_conv_bound_is_the_spectral_norm_of_its_explicit_matrix(kw):
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, **kw).double()
    shape = (4, 7, 6)
    b = lipschitz_bounds(nn.Sequential(conv), shape).layers[0]
    matrix = _matrix(lambda z: torch.nn.functional.conv2d(z, conv.weight.detach(), None, conv.stride,
                                                          conv.padding, conv.dilation, conv.groups), shape)
    sigma = torch.linalg.svdvals(matrix)[0].item()
    assert b.bound == pytest.approx(sigma, rel=REL)
    assert b.certified >= sigma * (1 - 1e-9)
    # the bias does not change a Lipschitz constant, the padding does: a circular-free check
    assert b.bound < torch.linalg.svdvals(conv.weight.detach().flatten(1))[0].item() * 3 + 1e-9


def test_batchnorm_bound_is_its_largest_scale():
    bn = nn.BatchNorm2d(5)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -3.0, 1.0, 2.0, 0.1]))
        bn.running_var.copy_(torch.tensor([1.0, 4.0, 0.25, 9.0, 0.01]))
    bn.eval()
    b = lipschitz_bounds(nn.Sequential(bn), (5, 4, 4)).layers[0]
    expected = (bn.weight.abs() / torch.sqrt(bn.running_var + bn.eps)).max().item()
    assert b.bound == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="eval mode"):
        lipschitz_bounds(nn.Sequential(bn.train()), (5, 4, 4))


def test_pooling_rules():
    # 3x3 windows with stride 2 overlap: a pixel is in up to 4 windows -> sqrt(4)
    rows = lipschitz_bounds(nn.Sequential(nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(2, 2), nn.AvgPool2d(2, 2)),
                            (1, 8, 8)).layers
    assert [r.bound for r in rows[:2]] == [pytest.approx(2.0), pytest.approx(1.0)]
    assert rows[2].bound == pytest.approx(0.5, rel=REL)  # mean of 4 disjoint pixels: 1/sqrt(4)


def test_unknown_module_is_named():
    with pytest.raises(ValueError, match="GELU"):
        lipschitz_bounds(nn.Sequential(nn.GELU()), (1, 4, 4))


@pytest.fixture(scope="module")
def resnet20():
    return fk.models.load("cifar10/resnet20")


def test_resnet20_bound_is_above_empirical_ratios(resnet20, one_thread):
    bounds = lipschitz_bounds(resnet20, (3, 32, 32))
    names = [layer.name for layer in bounds.layers]
    assert names[:3] == ["normalize", "net.conv1", "net.bn1"] and names[-1] == "net.fc"
    assert sum(layer.kind == "residual" for layer in bounds.layers) == 9
    assert bounds.L_certified >= bounds.L > 1
    merged = lipschitz_bounds(resnet20, (3, 32, 32), merge_linear=True)
    assert merged.L < bounds.L  # conv+BN and pool+fc compose to less than their products
    x, y = fk.data.load("cifar10", "test", n=8)
    g = torch.Generator().manual_seed(0)
    r = torch.randn(x.shape, generator=g)
    r = 1e-3 * r / r.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    adv = fk.attacks.DeepFool(norm=2)(resnet20, x, y).x_adv
    with torch.no_grad():
        for x2 in (x + r, adv):
            ratio = (resnet20(x2) - resnet20(x)).flatten(1).norm(dim=1) / (x2 - x).flatten(1).norm(dim=1)
            ratio = ratio[torch.isfinite(ratio)]
            assert len(ratio) > 0 and ratio.max().item() <= merged.L


@pytest.mark.parametrize("name", ["cifar10/densenet_bc40", "cifar10/mobilenet_v2_050",
                                  "cifar10/inception_small_050"])
def test_other_shipped_models_have_bounds(name, one_thread):
    model = fk.models.load(name)
    bounds = lipschitz_bounds(model, (3, 16, 16))  # 16x16 keeps it quick; the rules are the same
    assert bounds.layers[0].kind == "normalize" and bounds.layers[-1].kind == "linear"
    assert math.isfinite(bounds.L) and bounds.L_certified >= bounds.L > 1
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    r = 1e-3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ratio = (model(x + r) - model(x)).norm(dim=1) / r.flatten(1).norm(dim=1)
    assert ratio.max().item() <= bounds.L


def test_merged_linear_runs_are_tighter_and_exact():
    torch.manual_seed(2)
    conv, bn = nn.Conv2d(2, 3, 3, padding=1).double(), nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, -0.5, 1.0], dtype=torch.float64))
        bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64))
    model = nn.Sequential(conv, bn.eval(), nn.ReLU()).eval()
    shape = (2, 5, 5)
    plain = lipschitz_bounds(model, shape)
    merged = lipschitz_bounds(model, shape, merge_linear=True)
    assert [r.kind for r in merged.layers] == ["conv+batchnorm", "relu"]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().view(1, -1, 1, 1)
    matrix = _matrix(lambda z: torch.nn.functional.conv2d(z, conv.weight.detach(), padding=1) * scale, shape)
    sigma = torch.linalg.svdvals(matrix)[0].item()
    assert merged.L == pytest.approx(sigma, rel=REL)
    assert merged.L <= plain.L * (1 + 1e-9) and merged.L_certified == pytest.approx(plain.L_certified)
