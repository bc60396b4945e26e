"""Renderers of a scorecard record (``Scorecard.to_dict()``): Markdown, self-contained HTML, plots.

Each is a pure function of the record (and, for the sample-based plots, of the per-sample arrays).
Markdown needs nothing beyond the standard library; HTML needs jinja2 and plots need matplotlib
(both in the ``notebooks`` extra), imported only when called.
"""

from __future__ import annotations

from ._common import NIST_FUNCTION, headline_index, headline_result, overall_status
from .html import render_html
from .markdown import md_escape, render_markdown
from .plots import figure_png_base64, figures, save_plots

__all__ = [
    "render_markdown",
    "render_html",
    "figures",
    "save_plots",
    "figure_png_base64",
    "md_escape",
    "headline_index",
    "headline_result",
    "overall_status",
    "NIST_FUNCTION",
]
