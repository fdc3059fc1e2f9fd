"""Every registered attack returns detached results, even for images that require grad."""
import pytest
import torch

from conftest import make_affine
from foolkit.attacks import registry

# quick settings: the contract, not the attack's quality, is under test
FAST = {"lbfgs": {"max_iter": 5}, "onepixel": {"population": 10, "generations": 2},
        "universal": {"max_passes": 1}}


def _tensors(result):
    for name, value in vars(result).items():
        if isinstance(value, torch.Tensor):
            yield name, value
    for name, value in result.extra.items():
        if isinstance(value, torch.Tensor):
            yield f"extra[{name!r}]", value


@pytest.mark.parametrize("name", registry.list_attacks())
def test_results_are_detached_when_x_requires_grad(name):
    model = make_affine(dtype=torch.float32)
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    params = {k: v for k, v in FAST.get(name, {}).items() if k in {p.name for p in registry.parameters(name)}}
    attack = registry.create(name, **params)
    if hasattr(attack, "fit"):
        attack.fit(model, x)
        assert not attack.perturbation_.requires_grad and attack.perturbation_.grad_fn is None
    result = attack(model, x)
    assert result.attacked.any()
    for key, t in _tensors(result):
        assert not t.requires_grad and t.grad_fn is None, f"{name}: {key} is attached to the graph"
    assert torch.equal(result.x, x.detach())  # the same values, never modified
    assert x.grad is None and all(p.grad is None for p in model.parameters())
    assert x.requires_grad  # the caller's tensor is left as it was
