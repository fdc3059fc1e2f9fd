import pytest
import torch
from torch import nn

import foolkit as fk
from foolkit.defenses import Acquisition, recovery_rate


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 5)).eval()


def test_identity_settings_return_the_models_output():
    model, x = tiny_model(), torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(Acquisition(model, transforms=())(x), expected)
        # every transformation switched off by its parameter: resampling at the identity grid
        off = Acquisition(model, ("translate", "noise", "blur", "crop_resize"), max_shift=0, noise_std=0,
                          blur_sigma=0, crop_min=1.0)
        torch.testing.assert_close(off(x), expected)
        # a crop of the whole image resampled at scale 1 is the identity too (grid_sample rounding only)
        full = Acquisition(model, ("crop_resize",), crop_min=0.999999)
        torch.testing.assert_close(full(x), expected, atol=1e-4, rtol=1e-4)


def test_deterministic_given_seed_and_draws_differ_per_call():
    model, x = tiny_model(), torch.rand(6, 3, 16, 16)
    a, b = Acquisition(model, seed=3), Acquisition(model, seed=3)
    with torch.no_grad():
        first = a(x)
        assert torch.equal(first, b(x))
        second = a(x)
        assert not torch.equal(first, second)  # the generator advances: a new draw per call
        a.reset()
        assert torch.equal(a(x), first)
        assert not torch.equal(Acquisition(model, seed=4)(x), first)


def test_jpeg_quality_100_is_close_to_identity_and_low_quality_is_not():
    x = torch.rand(4, 3, 32, 32)
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)  # smoother, like a photo
    hi = Acquisition(nn.Identity(), ("jpeg",), jpeg_quality=100).transform(x)
    lo = Acquisition(nn.Identity(), ("jpeg",), jpeg_quality=10).transform(x)
    # quality 100 at 4:4:4: only 8-bit rounding and DCT rounding, a few levels at most
    assert (hi - x).abs().max() < 6 / 255 and (hi - x).abs().mean() < 1.5 / 255
    assert (lo - x).abs().mean() > 3 * (hi - x).abs().mean()


def test_gradients_flow_through_every_transform_including_jpeg():
    model, x = tiny_model(), torch.rand(3, 3, 16, 16, requires_grad=True)
    defended = Acquisition(model, seed=0, eot=3)
    out = defended(x)
    assert out.shape == (3, 5)
    out[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


def test_eot_averages_logits_over_draws():
    model, x = tiny_model(), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        eot = Acquisition(model, ("noise",), noise_std=0.1, seed=1, eot=4)(x)
        # the same four draws, made one by one from the same generator on the repeated batch
        single = Acquisition(model, ("noise",), noise_std=0.1, seed=1)
        draws = single(x.repeat(4, 1, 1, 1)).view(4, 2, -1)
    torch.testing.assert_close(eot, draws.mean(0))


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown transform 'rotate'"):
        Acquisition(nn.Identity(), ("rotate",))
    with pytest.raises(ValueError, match="jpeg_quality"):
        Acquisition(nn.Identity(), jpeg_quality=0)
    with pytest.raises(ValueError, match="eot"):
        Acquisition(nn.Identity(), eot=0)


def test_recovery_rate_of_fgsm_on_resnet20_is_positive(one_thread):
    model = fk.models.load("cifar10/resnet20")
    x, y = fk.data.load("cifar10", "test", n=50)
    result = fk.attacks.FGSM(eps=0.03)(model, x, y)
    assert result.success.sum() >= 5  # enough adversarial images to measure a share
    rate = recovery_rate(model, result.x_adv, y, Acquisition(model, seed=0))
    assert rate is not None and 0 < rate <= 1
    assert recovery_rate(model, x[:0], y[:0], Acquisition(model)) is None
