"""P3 -- notebook overhead: ``01_scorecard`` through papermill vs the same library calls in this process.

Three contenders, round-robin:

``notebook``      ``al.run_notebook("01_scorecard", params, out_dir)``: papermill starts a kernel, which imports
                  aisec-lab, torch and ART afresh, runs the cells and writes the executed notebook.
``in-process``    the notebook's cells as plain calls in this (warm) process: load the data, load the target,
                  ``evaluate``, ``save``, and the displays (``sc._repr_html_()``, ``al.notebooks.plots(sc)``).
``kernel start``  ``run_notebook`` on a one-cell notebook (``pass``): kernel start-up and papermill's own cost.

Ratio: (notebook - kernel start) / in-process (lower is better; target <= 1.3, i.e. notebook <= 1.3x in-process
plus the kernel start). Full suite: the notebook's default model and attacks (digits_cnn, the ``standard`` preset)
at eps 0.1 on 100 samples. Its 5,000-query Square makes each call take most of a minute here, so the notebook and
in-process runs are timed once (``--long-repeats N`` for more) after a warm-up on 20 samples, the kernel start
``--repeats`` times. The details also give the time a fresh Python process takes to import what the notebook's
kernel imports (aisec-lab, torch, ART, matplotlib, pandas): the part of the overhead that any new process pays.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .suite import medians, race, row

FULL = {"attacks": "standard", "eps": [0.1], "n_samples": 100}
QUICK = {"attacks": ["fgsm", "pgd"], "eps": [0.1], "n_samples": 100}
BASE = {"model": "digits_cnn", "framework": "pytorch", "dataset": "digits", "norm": "linf", "seed": 0}

_EMPTY_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {}, "outputs": [],
               "source": ["pass"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def _fresh_imports() -> float:
    """Seconds for a new Python process to import what the notebook's kernel imports."""
    import subprocess
    import sys
    import time

    code = "import aisec_lab, torch, art, matplotlib.pyplot, pandas, jinja2"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    return round(time.perf_counter() - t0, 2)


def in_process(params: dict, out_dir: Path):
    """The cells of notebooks/01_scorecard.ipynb, called directly (keep in step with the notebook)."""
    import aisec_lab as al

    data = al.load_dataset(params["dataset"], split="test")
    target = al.notebooks.load_target(params["model"], params["framework"], data)
    sc = al.evaluate(target, data, attacks=params["attacks"], norm=params["norm"], eps=params["eps"],
                     n_samples=params["n_samples"], seed=params["seed"],
                     notebook_parameters={**params, "output_dir": str(out_dir)}, progress=False)
    sc.save(out_dir)
    sc._repr_html_()  # what displaying `sc` in the notebook renders
    repr(sc)
    al.notebooks.plots(sc)._repr_html_()
    return sc


@row("p3_notebook_overhead", "P3 notebook 01_scorecard via papermill", group="P3 notebook", target=1.3,
     better="lower", baseline="same calls in-process, plus kernel start")
def p3(ctx):
    import aisec_lab as al

    params = {**BASE, **ctx.pick(QUICK, FULL)}
    warm_params = {**BASE, "attacks": ["fgsm"], "eps": [0.1], "n_samples": 20}
    tmp = Path(tempfile.mkdtemp(prefix="aisec-lab-bench-nb-"))
    try:
        empty = tmp / "00_empty.ipynb"
        empty.write_text(json.dumps(_EMPTY_NOTEBOOK))
        counter = iter(range(10**6))

        def fresh(kind: str) -> Path:
            return tmp / f"{kind}-{next(counter)}"

        contenders = {
            "notebook": lambda: al.run_notebook("01_scorecard", params, fresh("nb")),
            "in-process": lambda: in_process(params, fresh("ip")),
            "kernel start": lambda: al.run_notebook(empty, None, fresh("k")),
        }
        warm = {"notebook": None if ctx.quick else lambda: al.run_notebook("01_scorecard", warm_params, fresh("nb")),
                "in-process": lambda: in_process(warm_params, fresh("ip"))}
        res = race(contenders, repeats=ctx.repeats, warmup=warm,
                   repeats_for={"notebook": ctx.long_repeats, "in-process": ctx.long_repeats})
        imports_s = None if ctx.quick else _fresh_imports()
        t = medians(res)
        sc_nb, sc_ip = res["notebook"]["last"], res["in-process"]["last"]
        same = [round(sc_nb.robust_accuracy(e), 4) for e in params["eps"]] == \
               [round(sc_ip.robust_accuracy(e), 4) for e in params["eps"]]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = (t["notebook"] - t["kernel start"]) / t["in-process"]
    details = {
        "notebook": "01_scorecard", "parameters": params, "median_s": t,
        "timed_repeats": {k: len(v["times_s"]) for k, v in res.items()},
        "fresh_process_imports_s": imports_s,
        "times_s": {k: v["times_s"] for k, v in res.items()},
        "notebook_over_in_process_raw": round(t["notebook"] / t["in-process"], 3),
        "overhead_s": round(t["notebook"] - t["in-process"], 2),
        "same_robust_accuracy": same,
        "note": "the kernel imports torch and ART afresh on every run; the in-process calls run in a warm process",
    }
    return {"ratio": ratio, "details": details}
