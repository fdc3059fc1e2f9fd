"""Evaluation: clean accuracy tables, the resumable attack runner and its store."""
from .clean import ConfusionReport, clean_accuracy

__all__ = ["ConfusionReport", "clean_accuracy"]
