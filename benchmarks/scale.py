"""P5 -- scale: a batch of scorecards on Dask, and peak memory against the number of samples.

``p5_dask_2_vs_1``  ``aisec_lab.batch.run_batch`` of 8 ``01_scorecard`` jobs (digits_cnn, fgsm + pgd, eps 0.1,
                    100 samples, seeds 0-7; 2 jobs with --quick) on a Dask ``LocalCluster`` with 1 single-threaded
                    worker vs one with 2 (both started before timing; every job runs its notebook in its own kernel,
                    which inherits the worker's one-thread OpenMP/MKL settings). One job takes 10-20 s here (kernel
                    start, imports, evaluation with its checks, saving, plotting), so the 1-worker baseline takes
                    minutes: each cluster runs the batch once (``--long-repeats N`` for more) after its workers have
                    imported papermill and aisec-lab. Ratio: time(1 worker) / time(2 workers), higher is better,
                    target >= 1.7.
``p5_peak_rss``     peak RSS during ``al.evaluate`` (VmHWM, reset just before it) of n = 1,000 vs n = 10,000 digits
                    (fgsm + pgd-10, eps 0.1, automatic batch size, checks on), each n in a fresh subprocess started
                    with the suite's initial environment, alternated (3 times; once with --quick). The samples are
                    the bundled digits shifted by up to 1 px and noised. Ratio: peak(10,000) / peak(1,000), lower is
                    better, target <= 1.2. The peak includes the ~470 MB the loaded libraries hold; the details also
                    give the growth during the evaluation alone (peak minus the resident size just before
                    ``evaluate``) and the process's lifetime peak (``ru_maxrss``).

Run ``python -m benchmarks.scale --rss-child N`` to see one child's record.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .suite import START_ENV, medians, race, require_peer, row

ROOT = Path(__file__).resolve().parent.parent


def _grid(n_jobs: int) -> dict:
    return {"name": "benchmark-dask", "notebook": "01_scorecard",
            "base": {"model": "digits_cnn", "framework": "pytorch", "attacks": ["fgsm", "pgd"], "eps": [0.1],
                     "n_samples": 100},
            "grid": {"seed": list(range(n_jobs))}}


@row("p5_dask_2_vs_1", "P5 Dask batch of scorecards, 2 workers vs 1", group="P5 scale", target=1.7,
     better="higher", baseline="the same batch on 1 single-threaded worker")
def p5_dask(ctx):
    require_peer("distributed")
    import distributed

    from aisec_lab.batch import run_batch

    n_jobs = ctx.pick(2, 8)
    grid = _grid(n_jobs)
    tmp = Path(tempfile.mkdtemp(prefix="aisec-lab-bench-dask-"))
    counter = iter(range(10**6))
    clusters = {}
    environ = dict(os.environ)  # LocalCluster writes OMP_NUM_THREADS=1 and more into this process's environment
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for k in (1, 2):
            clusters[k] = distributed.LocalCluster(n_workers=k, threads_per_worker=1, processes=True,
                                                   dashboard_address=":0", silence_logs=logging.ERROR)

        def batch(k, g=grid):
            res = run_batch(g, tmp / f"w{k}-{next(counter)}", scheduler=clusters[k])
            if res.failed:
                raise RuntimeError(f"{len(res.failed)} batch job(s) failed on {k} worker(s); see {tmp}")
            return len(res.finished)

        def warm(k):  # the workers import what a job's runner imports (each job's kernel is a new process anyway)
            def fn():
                with distributed.Client(clusters[k]) as client:
                    client.run(_warm_worker)
            return fn

        res = race({"1 worker": lambda: batch(1), "2 workers": lambda: batch(2)}, repeats=ctx.long_repeats,
                   warmup={"1 worker": warm(1), "2 workers": warm(2)})
    finally:
        for c in clusters.values():
            c.close()
        shutil.rmtree(tmp, ignore_errors=True)
        os.environ.clear()
        os.environ.update(environ)
        quiet.setLevel(level)
    t = medians(res)
    details = {"jobs": n_jobs, "grid": grid, "timed_repeats": ctx.long_repeats, "median_s": t,
               "times_s": {k: v["times_s"] for k, v in res.items()},
               "seconds_per_job_1_worker": round(t["1 worker"] / n_jobs, 2),
               "cores": os.cpu_count()}
    return {"ratio": t["1 worker"] / t["2 workers"], "details": details}


def _warm_worker() -> None:
    import aisec_lab.batch  # noqa: F401
    import aisec_lab.notebooks  # noqa: F401
    import nbclient  # noqa: F401
    import papermill  # noqa: F401


def _vm_hwm_mb() -> float | None:
    """VmHWM (the resident-set high-water mark) of this process from /proc, in MiB; None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_child(n: int) -> dict:
    """Evaluate ``n`` jittered digits in this process; return the resident-set peak during ``evaluate``.

    Imports and data generation can leave a higher transient peak than the evaluation itself, so the
    high-water mark is reset just before ``evaluate`` (Linux); elsewhere the process's ``ru_maxrss`` is used.
    """
    import resource
    import time

    import psutil

    import aisec_lab as al

    from . import workloads

    ds = workloads.jittered(n)
    target = al.zoo.target("digits_cnn", framework="pytorch")
    target.oracle.logits(ds.x[:64])
    process_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    rss_before = psutil.Process().memory_info().rss / 2**20
    reset = _reset_hwm()
    t0 = time.perf_counter()
    sc = al.evaluate(target, ds, attacks=[al.attack("fgsm"), al.attack("pgd", max_iter=10)], eps=[0.1],
                     seed=0, progress=False)
    seconds = time.perf_counter() - t0
    hwm = _vm_hwm_mb() if reset else None
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    peak = hwm if hwm is not None else process_peak
    return {"n": n, "peak_rss_mb": round(peak, 1), "measured_by": "VmHWM reset before evaluate" if hwm is not None
            else "ru_maxrss of the process", "rss_before_evaluate_mb": round(rss_before, 1),
            "evaluate_growth_mb": round(peak - rss_before, 1), "process_peak_rss_mb": round(process_peak, 1),
            "process_peak_before_evaluate_mb": round(process_peak_before, 1), "evaluate_s": round(seconds, 2),
            "batch_size": sc.cost.get("batch_size"), "cpu_threads": sc.cost.get("cpu_threads"),
            "robust_accuracy": round(sc.robust_accuracy(0.1), 4)}


def _run_child(n: int) -> dict:
    env = {**START_ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--rss-child", str(n)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"the n={n} child failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@row("p5_peak_rss", "P5 peak RSS, evaluate n=10,000 vs n=1,000", group="P5 scale", target=1.2, better="lower",
     baseline="peak RSS at n=1,000 (fresh subprocess per n)")
def p5_rss(ctx):
    small, large = 1000, 10000
    runs = {small: [], large: []}
    for _ in range(ctx.pick(1, 3)):
        for n in (small, large):
            runs[n].append(_run_child(n))

    def med(n, key):
        return statistics.median(r[key] for r in runs[n])

    ratio = med(large, "peak_rss_mb") / med(small, "peak_rss_mb")
    growth = {str(n): med(n, "evaluate_growth_mb") for n in runs}
    details = {
        "subprocesses_per_n": len(runs[small]), "median_peak_rss_mb": {str(n): med(n, "peak_rss_mb") for n in runs},
        "median_evaluate_growth_mb": growth,
        "evaluate_growth_per_1000_samples_mb": round((growth[str(large)] - growth[str(small)]) / 9, 2),
        "median_evaluate_s": {str(n): med(n, "evaluate_s") for n in runs},
        "batch_size": runs[small][0]["batch_size"], "runs": runs,
        "attacks": "fgsm, pgd (max_iter=10), eps 0.1, checks on",
    }
    return {"ratio": ratio, "details": details}


if __name__ == "__main__":
    import argparse

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    p.add_argument("--rss-child", type=int, required=True, metavar="N")
    print(json.dumps(rss_child(p.parse_args().rss_child)))
