"""The benchmark suite's machinery: the row registry, the timing helpers and the results record.

Every row compares aisec-lab with a baseline **in the same process** and reports a *ratio* (these machines
are shared and noisy; absolute seconds are not comparable across runs, ratios measured side by side are).
Timing follows one rule everywhere (:func:`race`): each contender is warmed up once, then ``repeats`` rounds
call every contender once each, round-robin with the starting contender rotated, so a burst of load from
another process hits all contenders alike; the figure is each contender's median.

A row is a function ``fn(ctx) -> dict`` registered with :func:`row`; it returns ``ratio``, ``details`` and
optionally ``met`` (when meeting the target needs more than the ratio, e.g. P2's accuracy condition). It
raises :class:`Skip` when it cannot run here (a missing peer package): the row is then reported as skipped,
never as failed. Nothing here imports torch or tensorflow.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"
#: the environment as the suite started: subprocesses get this one (Dask's LocalCluster sets OMP_NUM_THREADS=1 and
#: more in the parent's os.environ, which would change what a later child measures)
START_ENV = dict(os.environ)
#: bumped when the layout of latest.json changes
FORMAT_VERSION = 1


class Skip(Exception):
    """This row (or one contender) cannot run here; the message says why ("torchattacks not installed")."""


@dataclass(frozen=True)
class Row:
    id: str
    name: str
    group: str
    target: float
    better: str  # "lower" or "higher": which side of `target` meets it
    baseline: str
    fn: Callable[["Context"], dict]
    cuda: bool = False  # also run on a CUDA device with --device cuda (absolute figures recorded separately)

    def meets(self, ratio: float) -> bool:
        return ratio <= self.target if self.better == "lower" else ratio >= self.target


ROWS: dict[str, Row] = {}


def row(id: str, name: str, *, group: str, target: float, better: str, baseline: str, cuda: bool = False):
    """Register ``fn(ctx) -> {"ratio": float, "details": dict[, "met": bool]}`` as a row of the suite."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")

    def deco(fn):
        if id in ROWS:
            raise ValueError(f"duplicate benchmark row {id!r}")
        ROWS[id] = Row(id=id, name=name, group=group, target=target, better=better, baseline=baseline, fn=fn,
                       cuda=cuda)
        return fn

    return deco


@dataclass
class Context:
    """What a row may ask of the run: its size (``quick``), the device, the number of timed repeats."""

    quick: bool = False
    device: str = "cpu"
    repeats: int = 5
    #: timed repeats of contenders that take minutes per call (P2's AutoAttacks, P3's notebook, P5's Dask batch)
    long_repeats: int = 1
    #: P2: run ART's AutoAttack at every eps (about 11 minutes each here) instead of eps = 0.1 only
    art_all_eps: bool = False
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    def pick(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full


# -- optional peers ----------------------------------------------------------------------------------------
#: benchmark-only peers, installed by `make bench` (never package dependencies) and how
PEERS = {
    "torchattacks": "pip install --no-deps torchattacks  (--no-deps: it would otherwise pull a CUDA torch)",
    "multiprocess": "pip install multiprocess  (ART's AutoAttack imports it without declaring it)",
}


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require_peer(module: str) -> None:
    if not has(module):
        raise Skip(f"{module} not installed ({PEERS.get(module, 'pip install ' + module)})")


# -- timing ------------------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def race(contenders: dict[str, Callable[[], Any]], *, repeats: int,
         warmup: dict[str, Callable[[], Any] | None] | None = None,
         repeats_for: dict[str, int] | None = None) -> dict[str, dict]:
    """Median wall time of each contender, measured round-robin in this process.

    ``warmup[name]`` (default: the contender itself) runs once first (tracing, allocation, caches); ``None``
    skips it. ``repeats_for[name]`` gives a context-only contender fewer timed repeats (it then takes part in
    the first rounds only). Returns ``{name: {"median_s", "times_s", "last": the last return value}}``.
    """
    warmup = warmup or {}
    want = {n: min(repeats, (repeats_for or {}).get(n, repeats)) for n in contenders}
    for name, fn in contenders.items():
        w = warmup.get(name, fn)
        if w is not None:
            w()
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    last: dict[str, Any] = {}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if len(times[name]) < want[name]:
                dt, last[name] = timed(contenders[name])
                times[name].append(dt)
    return {n: {"median_s": statistics.median(times[n]), "times_s": [round(t, 4) for t in times[n]],
                "last": last.get(n)} for n in names}


def search(configs: list, probe: Callable[[Any], Callable[[], Any]]) -> tuple[Any, dict[str, float]]:
    """The fastest of ``configs``: ``probe(config)`` returns a function to time; it is called once to warm
    up, then timed once (a quick search: the chosen setting is then measured properly by :func:`race`)."""
    seconds: dict[str, float] = {}
    best, best_s = None, math.inf
    for config in configs:
        fn = probe(config)
        fn()
        dt, _ = timed(fn)
        seconds[config_label(config)] = round(dt, 4)
        if dt < best_s:
            best, best_s = config, dt
    return best, seconds


def config_label(config: Any) -> str:
    if isinstance(config, tuple) and len(config) == 2:
        bs, threads = config
        return f"batch {bs}, {'default' if threads is None else threads} thread(s)"
    return str(config)


def medians(results: dict[str, dict]) -> dict[str, float]:
    return {k: round(v["median_s"], 4) for k, v in results.items()}


def load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# -- the record ----------------------------------------------------------------------------------------------
def _version(module: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    names = {"art": "adversarial-robustness-toolbox", "tensorflow": "tensorflow-cpu"}
    for name in (names.get(module, module), module, "tensorflow"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def machine() -> dict:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    mem_gb = None
    with contextlib.suppress(Exception):
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    import aisec_lab

    versions = {"python": platform.python_version(), "aisec_lab": aisec_lab.__version__}
    for mod in ("numpy", "torch", "tensorflow", "keras", "art", "torchattacks", "multiprocess", "papermill",
                "dask", "distributed"):
        versions[mod] = _version(mod)
    return {"cores": os.cpu_count(), "usable_cores": usable, "cpu": cpu, "memory_gb": mem_gb,
            "platform": platform.platform(), "node": platform.node(), "versions": versions,
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "AISEC_LAB_CACHE")}}


def run_row(r: Row, ctx: Context) -> dict:
    """Run one row; never raises (a crash becomes ``status: "error"`` with the traceback in ``details``)."""
    out = {"id": r.id, "name": r.name, "group": r.group, "ratio": None, "target": r.target, "better": r.better,
           "met": None, "baseline": r.baseline, "status": "ok", "details": {}}
    load0 = load()
    t0 = time.perf_counter()
    try:
        res = r.fn(ctx)
    except Skip as s:
        out.update(status="skipped", details={"reason": str(s)})
    except Exception as exc:  # noqa: BLE001 - one broken row must not lose the others
        out.update(status="error", details={"error": f"{type(exc).__name__}: {exc}"[:1000],
                                            "traceback": traceback.format_exc()[-4000:]})
    else:
        ratio = float(res["ratio"])
        out["ratio"] = round(ratio, 4)
        out["met"] = bool(res["met"]) if "met" in res else r.meets(ratio)
        out["details"] = res.get("details", {})
    out["details"]["row_wall_s"] = round(time.perf_counter() - t0, 1)
    out["details"]["load_avg_before_after"] = [load0, load()]
    return out


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def fmt_target(r: dict) -> str:
    return f"{'<=' if r['better'] == 'lower' else '>='} {r['target']:g}"


def fmt_met(r: dict) -> str:
    if r["status"] != "ok":
        return r["status"]
    return "yes" if r["met"] else "MISSED"


def table(rows: list[dict]) -> str:
    head = f"{'row':<52} {'ratio':>8} {'target':>8} {'met':>8}  baseline / note"
    lines = [head, "-" * len(head)]
    for r in rows:
        note = r["baseline"]
        if r["status"] == "skipped":
            note = r["details"].get("reason", "")
        elif r["status"] == "error":
            note = r["details"].get("error", "")
        lines.append(f"{r['name'][:52]:<52} {fmt_ratio(r['ratio']):>8} {fmt_target(r):>8} {fmt_met(r):>8}  "
                     f"{note[:90]}")
    return "\n".join(lines)


def write(path: Path, record: dict) -> Path:
    """Write ``record`` as JSON atomically (a ``.tmp`` file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=False, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(obj: Any) -> Any:
    for attr in ("item", "tolist"):  # numpy scalars and arrays
        if hasattr(obj, attr):
            return getattr(obj, attr)()
    return str(obj)


def command_line() -> str:
    return " ".join(["python -m benchmarks"] + sys.argv[1:])
