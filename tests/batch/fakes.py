"""Fake job runners for the batch tests: top-level functions, so worker processes can import them.

``fake_runner`` behaves like :func:`aisec_lab.notebooks.run_notebook` as far as the batch sees it: it
writes a small valid scorecard into ``out_dir`` and returns it. Parameters steer it:

- ``marker_dir``: a marker file ``<job folder name>.<uuid>.run`` is written there on every call;
- ``model``: the model name in the scorecard; ``ra``: the robust accuracy at the headline ε (a number,
  or a mapping model name -> number);
- ``sleep``: seconds to sleep before writing; ``fail``: raise (``"notebook"``: a NotebookExecutionError);
- ``crash``: the process dies (``os._exit``); ``full_save``: write through ``Scorecard.save`` (HTML, plots).
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "scorecard_small.json"


@lru_cache(maxsize=1)
def _record() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def markers(marker_dir, job_id: str) -> list[Path]:
    return sorted(Path(marker_dir).glob(f"{job_id}.*.run"))


def fake_runner(notebook, params, out_dir, *, timeout_s=None):
    import aisec_lab as al

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if params.get("marker_dir"):
        Path(params["marker_dir"]).mkdir(parents=True, exist_ok=True)
        (Path(params["marker_dir"]) / f"{out.name}.{uuid.uuid4().hex}.run").write_text(
            json.dumps({"notebook": notebook, "params": params, "timeout_s": timeout_s, "pid": os.getpid()}))
    if params.get("sleep"):
        time.sleep(float(params["sleep"]))
    if params.get("crash"):
        os._exit(3)
    if params.get("fail") == "notebook":
        err = al.NotebookExecutionError("cell 4 of 01_scorecard failed", got="ZeroDivisionError: division by zero",
                                        fix="look at the executed notebook")
        err.cell_index, err.cell_source = 4, "sc = al.evaluate(target, data, attacks=attacks, eps=eps)"
        err.ename, err.evalue = "ZeroDivisionError", "division by zero"
        err.traceback = "ZeroDivisionError: division by zero"
        err.executed_notebook = Path(out_dir) / "01_scorecard.ipynb"
        raise err
    if params.get("fail"):
        raise ValueError(f"boom from the fake runner ({params.get('model')})")
    record = copy.deepcopy(_record())
    if "model" in params:
        record["model"]["name"] = str(params["model"])
    ra = params.get("ra")
    if isinstance(ra, dict):  # robust accuracy per model name
        ra = ra.get(str(params.get("model")))
    if ra is not None:  # at the headline (middle) ε of 0.05, 0.1, 0.2
        head = record["results"][1]
        head["robust_accuracy"] = float(ra)
        head["robust_accuracy_ci"] = [max(0.0, ra - 0.1), min(1.0, ra + 0.1)]
    record["provenance"]["notebook_parameters"] = params
    sc = al.Scorecard.from_dict(record)
    if params.get("full_save"):
        sc.save(out)
    else:  # the JSON (validated, canonical) and a stand-in HTML page: fast
        from aisec_lab._io import atomic_write_text
        from aisec_lab.scorecard.io import validate

        validate(record)
        atomic_write_text(out / "scorecard.html", "<!DOCTYPE html><title>fake scorecard</title>\n")
        atomic_write_text(out / "scorecard.json", json.dumps(record, indent=2, sort_keys=True))
    return sc


def runner_without_scorecard(notebook, params, out_dir, *, timeout_s=None):
    """A notebook that produced no scorecard (finished, nothing to rank)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "note.txt").write_text("no scorecard here\n")
    return None


def runner_invalid_scorecard(notebook, params, out_dir, *, timeout_s=None):
    """Writes a truncated scorecard.json: the job must fail (the saved scorecard must validate)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "scorecard.json").write_text('{"schema_version": "1.0.0", "model": ')
    return None
