"""The contract every registered attack keeps (Foolbox's table-driven test): one row per name in
``foolkit.attacks.registry``, so a new attack is covered as soon as it is registered.

A tiny random CNN with batch norm and dropout makes the train/eval mode matter: run in train
mode, an attack's own verdict and a fresh eval-mode forward pass would disagree.
"""
import pytest
import torch
from torch import nn

from foolkit.attacks import registry

# small settings: the contract, not the attack's quality, is under test
FAST = {"lbfgs": {"max_iter": 5, "search_steps": 2}, "sparsefool": {"max_iter": 3},
        "fmn": {"steps": 10}, "onepixel": {"population": 8, "generations": 2},
        "universal": {"max_passes": 1}}
NAMES = registry.list_attacks()


def tiny_cnn(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 5)).to(dtype)


def images(n: int, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=dtype)


def make(name: str):
    known = {p.name for p in registry.parameters(name)}
    return registry.create(name, **{k: v for k, v in FAST.get(name, {}).items() if k in known})


def attack(name: str, model: nn.Module, x: torch.Tensor, **kw):
    a = make(name)
    if hasattr(a, "fit"):  # the universal perturbation is fitted first, on the same images
        a.fit(model, x)
    return a(model, x, **kw)


def modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@torch.no_grad()
def fresh_prediction(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was = modes(model)
    model.eval()
    pred = model(x).argmax(1)
    for m, t in zip(model.modules(), was):
        m.training = t
    return pred


@pytest.mark.parametrize("name", NAMES)
def test_contract(name):
    model = tiny_cnn().train()
    model[1].eval()  # a submodule in another mode than its parent
    before = modes(model)
    x = images(4)
    x_copy = x.clone()
    result = attack(name, model, x)

    assert torch.equal(x, x_copy), "the input images were modified"
    assert modes(model) == before, "the model's train/eval modes were not restored"
    assert all(p.grad is None for p in model.parameters()), "parameter gradients accumulated"
    for key, value in list(vars(result).items()) + list(result.extra.items()):
        if isinstance(value, torch.Tensor):
            assert not value.requires_grad and value.grad_fn is None, f"{key} is attached to a graph"
    assert result.attacked.any()
    pred = fresh_prediction(model, result.x_adv)
    assert torch.equal(result.success, result.attacked & (pred != result.label))
    assert torch.equal(result.adv_label, pred)


@pytest.mark.parametrize("name", [n for n in NAMES if make(n).supports_target])
def test_targeted_success_is_a_fresh_forward_pass(name):
    model = tiny_cnn().eval()
    x = images(4)
    target = (fresh_prediction(model, x) + 1) % 5
    target_copy = target.clone()
    result = attack(name, model, x, target=target)
    assert torch.equal(target, target_copy)
    pred = fresh_prediction(model, result.x_adv)
    assert torch.equal(result.success, result.attacked & (pred == target))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name):
    model = tiny_cnn().eval()
    x = images(4)
    first, second = attack(name, model, x), attack(name, model, x)
    assert torch.equal(first.x_adv, second.x_adv)
    assert first.forward_count == second.forward_count and first.gradient_count == second.gradient_count


@pytest.mark.parametrize("name", NAMES)
def test_float64_and_batch_of_one(name):
    model = tiny_cnn(torch.float64).eval()
    for n in (4, 1):
        x = images(n, torch.float64)
        y = fresh_prediction(model, x)
        y_copy = y.clone()
        result = attack(name, model, x, y=y)
        assert torch.equal(y, y_copy)
        assert result.x_adv.dtype == torch.float64 and result.x_adv.shape == x.shape
        pred = fresh_prediction(model, result.x_adv)
        assert torch.equal(result.success, result.attacked & (pred != y))


def test_queries_are_counted_by_hooks_while_watched():
    from foolkit.attacks.queries import Counter

    model, x = tiny_cnn().eval(), images(3)
    counter = Counter()
    with counter.watch(model):
        with torch.no_grad():
            model(x)  # 3 forward
        xg = x.clone().requires_grad_(True)
        logits = model(xg)  # 3 forward
        torch.autograd.grad(logits[:, 0].sum(), xg, retain_graph=True)  # 3 gradients
        torch.autograd.grad(logits[:, 1].sum(), xg)  # 3 more
        with counter.paused(), torch.no_grad():
            model(x)  # not counted
    with torch.no_grad():
        model(x)  # hooks removed: not counted
    assert (counter.forward, counter.gradient) == (6, 6)
