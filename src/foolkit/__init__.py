"""foolkit: adversarial examples for image classifiers and measures of their instability.

    import foolkit as fk
    model = fk.models.load("cifar10/resnet20")
    x, y = fk.data.load("cifar10", "test", n=100)
    result = fk.attacks.DeepFool(norm=2)(model, x, y)
"""
from ._version import __version__

from . import attacks, data, models, norms  # noqa: E402

__all__ = ["attacks", "data", "models", "norms", "__version__"]
from .evaluation.runner import evaluate  # noqa: E402

__all__ += ["evaluate"]
from .evaluation.sweep import sweep  # noqa: E402

__all__ += ["sweep"]
from .evaluation.transfer import transfer_matrix  # noqa: E402

__all__ += ["transfer_matrix"]
from .report.figures import show  # noqa: E402
from .report.single_image import attack_image  # noqa: E402

__all__ += ["show", "attack_image"]
from . import analysis  # noqa: E402

__all__ += ["analysis"]
from . import defenses  # noqa: E402

__all__ += ["defenses"]
