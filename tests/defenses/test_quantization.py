import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.defenses import fake_quant, quantize, quantize_weight


def test_weight_quantization_is_per_channel_symmetric():
    w = torch.randn(4, 3, 3, 3) * torch.tensor([1.0, 0.01, 5.0, 0.0]).view(4, 1, 1, 1)
    q = quantize_weight(w, 4)
    for c in range(3):  # 7 levels each side, the scale of each channel's own max
        step = w[c].abs().max() / 7
        assert ((q[c] / step).round() - q[c] / step).abs().max() < 1e-4
        assert (q[c] - w[c]).abs().max() <= step / 2 + 1e-6
        assert (q[c].abs().max() - w[c].abs().max()).abs() < 1e-6  # the extreme value is on the grid
    assert torch.equal(q[3], torch.zeros_like(q[3]))  # an all-zero channel stays zero (no division by 0)


def test_gradients_flow_through_fake_quant():
    x = torch.linspace(-1, 1, 11, requires_grad=True)
    y = fake_quant(x, torch.tensor(-1.0), torch.tensor(1.0), 2)
    assert len(set(y.detach().tolist())) == 4  # 2 bits: 4 levels
    (y * torch.arange(11.0)).sum().backward()
    torch.testing.assert_close(x.grad, torch.arange(11.0))  # straight-through: identity gradient
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    q = quantize(model, 4, 4, calibration=torch.rand(20, 3, 2, 2))
    xi = torch.rand(5, 3, 2, 2, requires_grad=True)
    q(xi)[:, 1].sum().backward()
    assert xi.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())  # the original is untouched


def test_bad_settings_are_one_line_errors():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(ValueError, match="weight_bits"):
        quantize(model, 1, None)
    with pytest.raises(ValueError, match="calibration"):
        quantize(model, 8, 8)


def test_resnet20_8bit_keeps_accuracy_and_4bit_deviates_more(one_thread):
    model = fk.models.load("cifar10/resnet20")
    x, y = fk.data.load("cifar10", "test", n=300)
    calib, x, y = x[:100], x[100:], y[100:]  # calibrate on other images than those measured
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q8, q4 = quantize(model, 8, 8, calibration=calib), quantize(model, 4, 4, calibration=calib)
    with torch.no_grad():
        fp, l8, l4 = model(x), q8(x), q4(x)
    acc = lambda logits: (logits.argmax(1) == y).float().mean().item()  # noqa: E731
    # 8 bits: within 2 points of full precision on 200 images (measured: 90.0 vs 89.0)
    assert acc(l8) >= acc(fp) - 0.02
    # 4 bits moves the logits much further (measured about 6x the 8-bit error) and loses accuracy
    assert (l4 - fp).abs().mean() > 3 * (l8 - fp).abs().mean()
    assert acc(l4) < acc(fp)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # a copy: model unchanged
