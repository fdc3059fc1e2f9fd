"""``fk.attack_image``: attack one image and draw the result (the figure of :func:`foolkit.show`).

The work is :func:`foolkit.evaluation.single_image.attack_one_image`; this adds the figure and,
with ``out=``, writes it.

Example:
    >>> result, fig = fk.attack_image("cat.jpg", model="imagenet/efficientnet-lite0", attack="deepfool")
    >>> fig.savefig("cat-deepfool.png"); result.adv_label, result.norms(2)
"""
from __future__ import annotations

import os
from typing import Any

from ..attacks.base import Attack, AttackResult
from ..evaluation.single_image import DEFAULT_ATTACK, attack_one_image


def attack_image(path: str | os.PathLike | None = None, model: Any = None, attack: str | Attack = DEFAULT_ATTACK,
                 **options: Any) -> tuple[AttackResult, Any]:
    """Attack one photo (or ``cifar_index=N``, or apply ``perturbation=FILE``) and draw it.

    Takes what :func:`~foolkit.evaluation.single_image.attack_one_image` takes (``target``,
    ``checkpoint``, ``device``, ``classes``, ``size``, ``mean``, ``std``, ``precision``, ``out``,
    the attack's parameters such as ``norm="inf"``, ``eps=0.01``, ...). With ``out``, the figure
    is written there (and the adversarial PNG beside it).

    Returns:
        ``(result, figure)``: the :class:`AttackResult` of the one image (``result.extra["image"]``
        says how it was cropped, ``["description"]`` in one line; the figure's subtitle shows it)
        and the matplotlib figure of :func:`foolkit.show`. Nothing is printed.
    """
    from ..evaluation.image_outputs import save_figure
    from .figures import show

    result = attack_one_image(path, model, attack, **options)
    fig = show(result, 0, result.extra["classes"], subtitle=f"{result.extra['model']}: "
                                                            f"{result.extra['image']['description']}")
    if "figure" in result.extra:
        save_figure(fig, result.extra["figure"])
    return result, fig


__all__ = ["attack_image"]
