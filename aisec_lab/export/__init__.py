"""Exports of a scorecard into other people's formats.

* :func:`model_index` -- a Hugging Face ``model-index`` YAML fragment (needs ``huggingface_hub``:
  ``pip install 'aisec-lab[export]'``), built with its ``EvalResult`` / ``ModelCardData``;
* :func:`model_card_toolkit` -- a Model Card Toolkit JSON document (schema v0.0.2);
* :func:`update_model_card` -- insert or replace the scorecard section of a ``README.md`` between
  markers, idempotently and atomically.

Each takes a :class:`~aisec_lab.Scorecard` or its ``to_dict()`` record. Importing this package
imports neither torch, tensorflow nor huggingface_hub; nothing here uses the network.
"""

from __future__ import annotations

from ._common import ATLAS_TECHNIQUES, NIST_AI_RMF_FUNCTION
from .huggingface import eval_results, model_index
from .mct import MCT_SCHEMA_VERSION, model_card_toolkit
from .model_card import END_MARKER, START_MARKER, update_model_card

__all__ = [
    "model_index",
    "eval_results",
    "model_card_toolkit",
    "update_model_card",
    "START_MARKER",
    "END_MARKER",
    "MCT_SCHEMA_VERSION",
    "ATLAS_TECHNIQUES",
    "NIST_AI_RMF_FUNCTION",
]
