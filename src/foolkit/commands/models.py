"""``foolkit models``: one line per registered model."""
from __future__ import annotations

NAME = "models"
HELP = "list the registered models"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..models.registry import card, list_models

    for name in list_models():
        c = card(name)
        acc = c.extra.get("test_accuracy")
        acc_s = f"acc {100 * acc:.2f}%" if isinstance(acc, (int, float)) else "no shipped weights" if c.checkpoint is None and "loader" not in c.extra else ""
        print(f"{name:32s} {c.num_params / 1e6:6.2f}M params  {acc_s:22s} {c.architecture}")
    return 0
