"""``foolkit models``: one line per registered model, with whether its weights are available."""
from __future__ import annotations

NAME = "models"
HELP = "list the registered models and whether their weights are available"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..models.registry import card, list_models, weights_status

    rows = []
    for name in list_models():
        c = card(name)
        available, how = weights_status(name)
        acc = c.extra.get("test_accuracy")
        if available and isinstance(acc, (int, float)):
            state = f"acc {100 * acc:.2f}%"
        elif available:
            state = "weights " + how.split(" (")[0]  # "weights installed": the package is named when missing
        else:
            state = how
        rows.append((name, c, state))
    width = max([22] + [len(state) for _, _, state in rows])
    for name, c, state in rows:
        print(f"{name:32s} {c.num_params / 1e6:6.2f}M params  {state:{width}s} {c.architecture}")
    return 0
