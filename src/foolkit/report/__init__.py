"""HTML reports of run stores: metrics tables, norm histograms, image grids, probability traces."""
from .html import render, write_report

__all__ = ["render", "write_report"]
