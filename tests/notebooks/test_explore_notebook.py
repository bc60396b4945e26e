"""``03_explore`` runs headless under papermill with tiny parameters and shows the explorer."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")
pytest.importorskip("ipywidgets")
pytest.importorskip("torch")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03_explore.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _code(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_committed_notebook_is_thin_and_stripped():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = _code(nb)
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in cells)
    params = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    lines = [ln for ln in "".join(params[0]["source"]).splitlines() if ln.strip()]
    names = []
    for line in lines:  # `name: type = literal  # help`, one per line
        code, _, help_text = line.partition("  # ")
        stmt = ast.parse(code).body[0]
        assert isinstance(stmt, ast.AnnAssign) and help_text.strip(), line
        ast.literal_eval(stmt.value)
        names.append(stmt.target.id)
    assert {"model", "framework", "dataset", "norm", "seed", "output_dir"} <= set(names)
    for c in cells:
        source = "".join(c["source"])
        tree = ast.parse(source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) for n in ast.walk(tree))
        assert "!pip" not in source and "%pip" not in source


def test_explore_notebook_runs_headless(tmp_path, zoo_models):
    zoo_models("digits_cnn", "pytorch")  # trained (or loaded) into the shared cache before the kernel starts
    out = tmp_path / "03_explore.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), cwd=str(tmp_path), progress_bar=False, kernel_name="python3",
        parameters={"attacks": ["fgsm", "pgd"], "eps": [0.1, 0.2], "sample": 3, "curve_samples": 8,
                    "show_curve": True, "output_dir": str(tmp_path / "explore")})
    nb = json.loads(out.read_text(encoding="utf-8"))
    errors = [o for c in _code(nb) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    last = _code(nb)[-1]
    data = [o["data"] for o in last["outputs"] if o.get("output_type") in ("display_data", "execute_result")]
    assert data, last["outputs"]
    assert WIDGET_MIME in data[-1] and "image/png" in data[-1]  # the live widget, a PNG for static viewers
    assert "Explorer(" in "".join(data[-1]["text/plain"])
    assert not (tmp_path / "explore").exists()  # the explorer writes nothing
