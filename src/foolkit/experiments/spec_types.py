"""The types of the experiment specs (``Experiment`` and its parts: ``Images``,
``AttackConfig``, ``Show``, ``Claim``) and the vocabulary they use (``ATTACKS``, ``CHECKS``).
Data only: nothing here runs a model. The units of their numbers: ``thesis_setup``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

ATTACKS = ("fgsm", "deepfool", "sparsefool", "onepixel", "universal", "clean")

# Check kinds of a Claim. Each check is meant to be run twice: on the thesis's numbers and on
# ours. `ref` names a column as "table-12.3:fooling_rate"; it resolves to the thesis's numbers
# when checking the thesis and to our reproduction of that table when checking ours;
# ":quantity" is another quantity of the same experiment.
CHECKS = {
    "increasing": "quantity rises along the grid parameter `over`, for every model",
    "decreasing": "quantity falls along `over`, for every model",
    "less_than": "quantity < `value` (a number) or < the `ref` column, model by model",
    "greater_than": "quantity > `value` or > the `ref` column, model by model",
    "close_to": "|quantity - (`value` or `ref`)| <= `tol` (+ the sample's margin)",
    "ratio_close": "quantity / `ref` within a factor (1 + `tol`) of 1 (+ the sample's margin)",
    "between": "value[0] <= quantity <= value[1]",
    "argmax": "the model `value` has the largest quantity",
    "argmin": "the model `value` has the smallest quantity",
    "top": "the models in `value` have the len(value) largest quantities",
    "order": "models ranked by quantity, largest first, are `value`",
    "same_order": "models ranked by quantity as by the `ref` column",
    "diagonal_dominates": "source x target matrix: each column's largest entry is on the diagonal",
    "flat_after": "for grid values >= `value`, quantity stays within `tol` (relative) of its last value",
    "visual": "illustrative figure, not machine-checked: reproduce renders it",
    "custom": "the experiment's own rule (specs_stronger_part4: stronger.check / part4.check), same statistics",
}


@dataclass(frozen=True)
class Images:
    """The images an experiment uses: ``source`` "cifar10-test" (first n images, in order) or
    "natural-images" (shared/datasets/natural-images; n None = all). Universal experiments fit
    on the first ``n`` and measure on the first ``eval_n``; ``n_grid`` sweeps n (Fig. 12.25)."""
    source: str
    n: int | None
    quick_n: int
    eval_n: int | None = None
    quick_eval_n: int | None = None
    n_grid: tuple[int, ...] = ()
    note: str = ""

    def describe(self, quick: bool = False) -> str:
        n = self.quick_n if quick else self.n
        text = f"{self.source.replace('-', ' ')}, n={'all' if n is None else n}"
        if self.eval_n is not None:
            text += f" (fit), eval n={self.quick_eval_n if quick else self.eval_n}"
        return text


@dataclass(frozen=True)
class AttackConfig:
    """One attack configuration. ``params`` are fixed, ``grid`` is swept (every combination);
    both use foolkit's parameter names and OUR units ([0,1] pixels; a universal ``xi`` too, which
    ``reproduce`` converts to the model's normalised units for variant="thesis"). ``thesis`` holds
    the same settings as the thesis printed them, in its units. ``mode``: "sweep" (every grid
    point), "minimal" (per image, the smallest grid value that fools; FGSM ``minimal_epsilon``),
    "fit" (universal: fit on X, then evaluate). Call arguments (``target``) may appear in grid.
    ``compare``: see the field's comment (foolkit's algorithm as a second table row)."""
    attack: str
    params: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, tuple] = field(default_factory=dict)
    thesis: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "sweep"
    units: str = ""
    # A second row of the thesis's table with foolkit's own algorithm (variant="foolkit") beside
    # the thesis's (``params`` hold variant="thesis"): None for none; else the grid of that row
    # ({} = the run's grid; a dict narrows it, e.g. FGSM's table eps only). Claims never read it.
    compare: Mapping[str, tuple] | None = None


@dataclass(frozen=True)
class Show:
    """How a result is shown: a ``table`` in the layout of ``ref`` (our numbers beside the
    thesis's), or a ``figure`` with ``y`` against ``x``, one series per ``series``."""
    kind: str
    ref: str
    x: str | None = None
    y: tuple[str, ...] = ()
    series: str | None = "model"


@dataclass(frozen=True)
class Claim:
    """One qualitative conclusion of the thesis. ``claim``: short, checkable; ``check``: a key
    of CHECKS; ``quantity``: a foolkit metric key or a derived quantity named in the
    experiment's notes; ``at``: grid values where it is checked ("max": the largest;
    {"diagonal": True}: a matrix's diagonal); ``models``: thesis names it
    applies to (all when empty); ``claim_text``: the thesis's own sentence. ``scope``
    "networks" marks a claim about a level of the thesis's own trained networks (an accuracy,
    a rate near a number), which stand-in models cannot test; ``min_fit``: the smallest fit set
    |X| at which the claim is checkable (below it: "not checkable at this size")."""
    claim: str
    check: str
    quantity: str
    claim_text: str
    over: str | None = None
    value: Any = None
    ref: str | None = None
    tol: float | None = None
    at: Mapping[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    scope: str = "general"  # "networks": a level of the thesis's specific trained networks
    min_fit: int | None = None  # the claim's regime: |X| (universal fit set) at least this


@dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    runs: tuple[AttackConfig, ...]
    models: tuple[str, ...]
    images: Images
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    show: tuple[Show, ...] = ()
    claims: tuple[Claim, ...] = ()
    evaluate_on: tuple[str, ...] = ()  # universal transfer: models v is also measured on
    reuses: str | None = None  # id of an experiment whose results this one reads
    shares: str | None = None  # id of an experiment whose images (n) this one's runs of its attack take
    notes: str = ""

    @property
    def attack(self) -> str:
        names = dict.fromkeys(r.attack for r in self.runs)
        return "+".join(names)

    @property
    def thesis_refs(self) -> tuple[str, ...]:
        """The ids in thesis_numbers.toml this experiment is compared with."""
        return self.tables + self.figures
