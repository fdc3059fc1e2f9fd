import math
from pathlib import Path

import pytest
import torch
from torch import nn

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


class Affine(nn.Module):
    """f(x) = W flat(x) + b: the minimal Lp perturbation to the (k,l) boundary is exact."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, x):
        return x.flatten(1) @ self.weight.T + self.bias


def make_affine(num_classes=10, shape=(3, 8, 8), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    d = math.prod(shape)
    w = torch.randn(num_classes, d, generator=g, dtype=dtype) / math.sqrt(d)
    b = torch.randn(num_classes, generator=g, dtype=dtype) * 0.1
    return Affine(w, b).eval()


@pytest.fixture(scope="module")
def one_thread():
    """Big networks on a busy 2-core machine: one thread avoids OpenMP stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def affine():
    return make_affine()


@pytest.fixture(scope="session")
def resnet20():
    import foolkit as fk
    return fk.models.load("cifar10/resnet20")


@pytest.fixture(scope="session")
def bundled():
    import foolkit as fk
    return fk.data.load("cifar10", "test")


def run_cli(argv, capsys):
    """(exit code, stdout, stderr lines) of an in-process ``foolkit`` run; argparse exits count."""
    from foolkit.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def random_resnet20_weights(tmp_path_factory):
    """A state_dict file of resnet20 with seeded random weights: CLI tests that do not need
    the shipped network's accuracy run on it."""
    import foolkit as fk

    path = tmp_path_factory.mktemp("w") / "resnet20.pt"
    torch.manual_seed(0)
    torch.save(fk.models.build("cifar10/resnet20").net.state_dict(), path)
    return str(path)


def assert_same_records(a, b):
    """Two runs hold the same samples: labels and flags equal, floats within rel 1e-5 (engines
    compute in other processes and thread counts, where kernels may differ); timing aside."""
    ra, rb = a.records(), b.records()
    assert [r["idx"] for r in ra] == [r["idx"] for r in rb]
    for x, y in zip(ra, rb):
        for k in x:
            if k == "seconds":
                continue
            if isinstance(x[k], float) and isinstance(y[k], float):
                assert x[k] == pytest.approx(y[k], rel=1e-5, abs=1e-6), k
            else:
                assert x[k] == y[k], k
