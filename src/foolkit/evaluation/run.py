"""A stored run: ``Run(store, run_id)`` reads back the configuration, the per-sample records,
the metrics and the images of one :func:`foolkit.evaluation.evaluate` run."""
from __future__ import annotations

import contextlib
import os

import numpy as np

from . import metrics as _metrics
from .store import Store
from .store_format import decode


class Run:
    """A run in a store: its identity, configuration, per-sample records and metrics."""

    def __init__(self, store: str | os.PathLike | Store, run_id: str):
        self._store_obj = store if isinstance(store, Store) else None
        self.path = store.path if isinstance(store, Store) else str(store)
        with self._open() as s:
            info = s.run(run_id)
        self.run_id = info["run_id"]
        self.config = info["config"]
        self.title = info["title"]
        self.n_total = info["n_total"]

    def _open(self):
        if self._store_obj is not None:  # an in-memory or caller-owned store stays open
            return contextlib.nullcontext(self._store_obj)
        return Store(self.path, readonly=True)

    @property
    def complete(self) -> bool:
        with self._open() as s:
            return s.run(self.run_id)["n_done"] >= self.n_total

    def records(self) -> list[dict]:
        with self._open() as s:
            return s.samples(self.run_id)

    def samples(self, as_frame: bool | None = None):
        """Per-sample records (list of dicts); a pandas DataFrame if pandas is installed
        (``as_frame=None``) or ``as_frame=True``."""
        rows = self.records()
        if as_frame is False:
            return rows
        try:
            import pandas as pd
        except ImportError:
            if as_frame:
                raise
            return rows
        return pd.DataFrame(rows)

    def metrics(self) -> dict:
        """The thesis's metrics from the stored records (:func:`foolkit.evaluation.metrics.compute`)."""
        return _metrics.compute(self.records())

    def images(self, indices=None) -> dict[int, dict]:
        """idx -> {"x", "x_adv" (x + exact r), "x_adv_8bit", "perturbation", "extra"} as numpy."""
        with self._open() as s:
            raw = s.blobs(self.run_id, indices)
        out = {}
        for i, b in raw.items():
            x = b["image"]
            r = b["perturbation"] if b["perturbation"] is not None else np.zeros_like(x)
            out[i] = {"x": x, "perturbation": r, "x_adv": x + r,
                      "x_adv_8bit": b["adv"] if b["adv"] is not None else x, "extra": b["extra"] or {}}
        return out

    def artifact(self, key: str):
        with self._open() as s:
            blob = s.artifact(self.run_id, key)
        return None if blob is None else decode(blob)

    def table(self) -> str:
        return _metrics.format_table([(self.title, self.metrics())])

    def __repr__(self) -> str:
        return f"Run({self.run_id}, {self.title!r}, {self.path})"


def runs_in(path: str | os.PathLike) -> list[Run]:
    """Every run stored in a file."""
    with Store(path, readonly=True) as s:
        ids = [r["run_id"] for r in s.runs()]
    return [Run(path, i) for i in ids]
