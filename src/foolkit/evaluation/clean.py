"""Clean accuracy, per-class accuracy and the confusion matrix (the thesis's Table 11.4)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..models.predict import predict_labels


@dataclass
class ConfusionReport:
    """Accuracy of a model on labelled images.

    confusion[i, j] counts images of true class i predicted as j. ``seconds`` is the wall time
    of the forward passes.
    """

    confusion: torch.Tensor
    classes: tuple[str, ...]
    seconds: float

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(self.confusion.diag().sum()) / max(self.n, 1)

    @property
    def per_class(self) -> torch.Tensor:
        return self.confusion.diag().double() / self.confusion.sum(1).clamp_min(1).double()

    def format(self) -> str:
        width = max(len(c) for c in self.classes)
        lines = [f"accuracy {100 * self.accuracy:.2f}% on {self.n} images ({1000 * self.seconds / max(self.n, 1):.2f} ms/image)", "",
                 f"{'class':{width}s}  accuracy"]
        for name, acc, total in zip(self.classes, self.per_class.tolist(), self.confusion.sum(1).tolist()):
            # a class with no images has no accuracy (not 0.00%): a prefix (--n 5) can miss classes
            lines.append(f"{name:{width}s}  {100 * acc:6.2f}%  (n={total})" if total else
                         f"{name:{width}s}  {'-':>7s}  (n=0: no images of this class)")
        short = [c[:5] for c in self.classes]
        lines += ["", "confusion matrix (rows: true class, columns: predicted)",
                  " " * (width + 1) + " ".join(f"{s:>5s}" for s in short)]
        for name, row in zip(self.classes, self.confusion.tolist()):
            lines.append(f"{name:{width}s} " + " ".join(f"{v:5d}" for v in row))
        return "\n".join(lines)


def clean_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: tuple[str, ...],
                   batch_size: int = 500, progress: bool = False, desc: str = "clean accuracy") -> ConfusionReport:
    """Classify ``x`` [N,C,H,W] in [0,1] with labels ``y`` [N]; return a :class:`ConfusionReport`.

    ``progress=True`` shows a tqdm bar on stderr (images done; the same bar as ``foolkit attack``):
    10,000 images take about a minute on a CPU for the slower networks. The model runs in eval
    mode and leaves in the train/eval modes it came with.
    """
    k = len(classes)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(x), desc=desc, unit="img", dynamic_ncols=True, leave=False)
    start = time.perf_counter()
    try:
        pred = predict_labels(model, x, batch_size, on_batch=None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    confusion = torch.bincount(y.cpu() * k + pred, minlength=k * k).view(k, k)
    return ConfusionReport(confusion, tuple(classes), time.perf_counter() - start)
