"""Evaluation: clean accuracy tables, the resumable attack runner and its store."""
from .clean import ConfusionReport, clean_accuracy

__all__ = ["ConfusionReport", "clean_accuracy"]
from ..errors import MergeConflict, StoreError  # noqa: E402
from .merge import merge_stores  # noqa: E402
from .run import Run, runs_in  # noqa: E402
from .runner import evaluate  # noqa: E402
from .store import Store  # noqa: E402
from .verify import quantize_8bit, verify_result  # noqa: E402

__all__ += ["MergeConflict", "Run", "Store", "StoreError", "evaluate", "merge_stores", "quantize_8bit", "runs_in",
            "verify_result"]
