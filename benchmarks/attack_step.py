"""P1 -- attack step: PGD-20 L-inf (eps = 0.1, step 2.5 * eps / 20, one random start) on the same samples.

Rows: ``digits_cnn`` on 300 bundled test digits and a LeNet-size CNN (431k parameters) on 1,000 digits
upsampled to 28x28, each in PyTorch and TensorFlow. Contenders, all in this process:

``aisec-lab``            ``al.attack("pgd", max_iter=20).run(...)`` per batch, at the batch size and thread count
                         that ``al.evaluate(batch_size="auto")`` picks: what a user of the library gets.
``aisec-lab same work``  the same native kernel with early stopping off: every sample runs all 20 steps, like
                         every other contender (aisec-lab by default stops attacking a sample once it is broken).
``hand-written``         the best of a few batch sizes (and torch thread counts) of a plain loop
                         (``loops_torch.pgd`` / ``loops_tensorflow.pgd``): the floor.
``ART defaults``         ``ProjectedGradientDescent(target.estimator, ...)`` with ART's batch size (32).
``ART best batch``       the same at the best batch size (and torch thread count) of a quick search.
``torchattacks``         ``torchattacks.PGD`` at the hand-written loop's best setting (torch only).

Ratio: aisec-lab / hand-written (lower is better; target <= 1.05).
"""

from __future__ import annotations

import importlib

import numpy as np

from .suite import Skip, config_label, has, medians, race, row, search

EPS = 0.1
STEPS = 20
STEP = 2.5 * EPS / STEPS
PROBE_STEPS = 5
PROBE_N = 256
BATCH_CANDIDATES = (32, 64, 128, 256)
#: the LeNet rows and --quick search fewer (each probe of the LeNet takes about a second)
QUICK_BATCH_CANDIDATES = (32, 128)
#: contenders that give context but not the row's ratio; on the LeNet rows (each call takes 5-30 s here) they are
#: timed once after their warm-up, so that the full suite stays under 30 minutes
CONTEXT = ("aisec-lab same work", "ART defaults", "ART best batch", "torchattacks")


def framework_modules(framework: str):
    """(models module, loops module) of ``framework``: every line of framework code lives in a file named for it."""
    names = {"pytorch": ("models_torch", "loops_torch"), "tensorflow": ("models_keras", "loops_tensorflow")}
    return tuple(importlib.import_module(f"{__package__}.{m}") for m in names[framework])


def accuracy(target, x: np.ndarray, y: np.ndarray) -> float:
    z = np.concatenate([target.oracle.logits(x[i:i + 256]) for i in range(0, len(x), 256)])
    return round(float((z.argmax(1) == y).mean()), 4)


def warm_idx(n: int, bs: int) -> np.ndarray:
    """One full batch and the trailing partial one: every batch shape the timed run will see."""
    idx = np.r_[0:min(bs, n), n - n % bs:n]
    return np.unique(idx)


def onehot(y: np.ndarray, k: int = 10) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[y]


def _art_pgd(target, bs: int | None, steps: int):
    from art.attacks.evasion import ProjectedGradientDescent

    kw = {} if bs is None else {"batch_size": bs}  # None: ART's default batch size
    return ProjectedGradientDescent(target.estimator, norm=np.inf, eps=EPS, eps_step=STEP, max_iter=steps,
                                    num_random_init=1, verbose=False, **kw)


def measure(ctx, framework: str, workload: str) -> dict:
    import aisec_lab as al
    from aisec_lab.attacks import kernels
    from aisec_lab.evaluation.batching import choose_batch_size

    from . import workloads

    device = ctx.device
    models, loops = framework_modules(framework)
    if workload == "digits_cnn":
        ds = workloads.digits(300)
        x, y = np.ascontiguousarray(ds.x, np.float32), np.asarray(ds.y, np.int64)
        target = models.zoo_target("digits_cnn", device)
        data_note = "300 bundled test digits (stratified, seed 0), 8x8"
    else:
        n = ctx.pick(100, 1000)
        x, y = workloads.digits28(n, split="test", seed=0)
        target = models.lenet_target(device)
        data_note = f"{n} test digits upsampled to 28x28 (bilinear) with shifts of up to 2 px and noise sigma 0.03"
    n = len(x)
    clean = accuracy(target, x, y)
    model = loops.native_model(target)
    data = loops.Data(target, x, y)
    probe_n = min(n, PROBE_N)
    probe_data = data.subset(np.arange(probe_n))
    few = ctx.quick or workload == "lenet"
    sizes = tuple(b for b in (QUICK_BATCH_CANDIDATES if few else BATCH_CANDIDATES) if b <= probe_n) or (probe_n,)
    configs = [(bs, th) for th in loops.thread_options(device) for bs in sizes]

    # -- quick searches (PGD-5 on the first probe_n samples, one timed call each after a warm-up) ------------------
    def hand_probe(cfg):
        bs, th = cfg

        def fn():
            with loops.threads(th):
                return loops.pgd(model, probe_data, eps=EPS, step=STEP, steps=PROBE_STEPS, batch_size=bs)
        return fn

    al_bs, al_th = choose_batch_size(target, n)  # what evaluate(batch_size="auto") picks (cached per model)
    # the hand-written loop may also use aisec-lab's setting, so its best is never worse than that
    hand_configs = configs + ([(al_bs, al_th)] if (al_bs, al_th) not in configs and al_bs <= probe_n else [])
    hand_cfg, hand_probe_s = search(hand_configs, hand_probe)

    def art_probe(cfg):
        bs, th = cfg
        atk = _art_pgd(target, bs, PROBE_STEPS)
        xp, yp = x[:probe_n], onehot(y[:probe_n])

        def fn():
            with loops.threads(th):
                return atk.generate(x=xp, y=yp)
        return fn

    art_cfg, art_probe_s = search(configs, art_probe)

    # -- the contenders -------------------------------------------------------------------------------------------
    spec = al.attack("pgd", max_iter=STEPS, eps_step=STEP)

    def aisec(xs=x, ys=y):
        with target.oracle.threads(al_th):
            return np.concatenate([spec.run(target, xs[i:i + al_bs], ys[i:i + al_bs], norm="linf", eps=EPS,
                                            seed=ctx.seed + k) for k, i in enumerate(range(0, len(xs), al_bs))])

    def aisec_same_work(xs=x, ys=y):
        with target.oracle.threads(al_th):
            return np.concatenate([kernels.pgd(target.oracle, xs[i:i + al_bs], ys[i:i + al_bs], norm="linf", eps=EPS,
                                               eps_step=STEP, max_iter=STEPS, num_random_init=1,
                                               seed=ctx.seed + k, early_stop=False)
                                   for k, i in enumerate(range(0, len(xs), al_bs))])

    def hand(d=data):
        with loops.threads(hand_cfg[1]):
            return loops.pgd(model, d, eps=EPS, step=STEP, steps=STEPS, batch_size=hand_cfg[0], seed=ctx.seed)

    def art_runner(cfg):
        atk = _art_pgd(target, cfg[0], STEPS)

        def fn(xs=x, ys=y):
            with loops.threads(cfg[1]):
                return atk.generate(x=xs, y=onehot(ys))
        return fn

    art_default_cfg = (32, None)
    contenders = {"aisec-lab": aisec, "aisec-lab same work": aisec_same_work, "hand-written": hand,
                  "ART defaults": art_runner(art_default_cfg)}
    warm_bs = {"aisec-lab": al_bs, "aisec-lab same work": al_bs, "hand-written": hand_cfg[0], "ART defaults": 32}
    if art_cfg != art_default_cfg:
        contenders["ART best batch"] = art_runner(art_cfg)
        warm_bs["ART best batch"] = art_cfg[0]
    skipped = {}
    if framework == "pytorch":
        if has("torchattacks"):
            def ta(d=data):
                with loops.threads(hand_cfg[1]):
                    return loops.torchattacks_pgd(model, d, eps=EPS, step=STEP, steps=STEPS, batch_size=hand_cfg[0],
                                                  seed=ctx.seed)
            contenders["torchattacks"] = ta
            warm_bs["torchattacks"] = hand_cfg[0]
        else:
            skipped["torchattacks"] = "skipped: torchattacks not installed (pip install --no-deps torchattacks)"

    def warm(name):
        idx = warm_idx(n, warm_bs[name])
        fn = contenders[name]
        if name in ("hand-written", "torchattacks"):
            return lambda: fn(data.subset(idx))
        return lambda: fn(x[idx], y[idx])

    context_repeats = 1 if workload == "lenet" else ctx.pick(1, ctx.repeats)
    res = race(contenders, repeats=ctx.repeats, warmup={k: warm(k) for k in contenders},
               repeats_for={k: context_repeats for k in CONTEXT})
    if "ART best batch" not in res:
        res["ART best batch"] = res["ART defaults"]
    t = medians(res)
    floor = t["hand-written"]
    robust = {}
    for name, r in res.items():
        adv = r["last"] if isinstance(r["last"], np.ndarray) else loops.canonical(r["last"])
        if np.abs(adv - x).max() > EPS * (1 + 1e-5) + 1e-6:
            raise RuntimeError(f"{name} returned points outside the eps-ball")
        robust[name] = accuracy(target, adv, y)
    details = {
        "framework": framework, "device": device, "model": target.name, "n_params": target.n_params,
        "data": data_note, "n": n, "eps": EPS, "eps_step": STEP, "steps": STEPS, "clean_accuracy": clean,
        "timed_repeats": {k: len(v["times_s"]) for k, v in res.items()},
        "settings": {"aisec-lab (auto)": config_label((al_bs, al_th)), "hand-written (best)": config_label(hand_cfg),
                     "ART defaults": config_label(art_default_cfg), "ART best batch": config_label(art_cfg),
                     "torchattacks": config_label(hand_cfg) + " (the hand-written loop's best)"},
        "median_s": t, "times_s": {k: v["times_s"] for k, v in res.items()},
        "ratio_to_hand_written": {k: round(v / floor, 3) for k, v in t.items()},
        "same_work_ratio": round(t["aisec-lab same work"] / floor, 3),
        "same_work_meets_target": t["aisec-lab same work"] / floor <= 1.05,
        "hand_written_is_x_faster_than_art_defaults": round(t["ART defaults"] / floor, 3),
        "robust_accuracy_after": robust,
        "search_probe_s": {"hand-written": hand_probe_s, "ART": art_probe_s,
                           "what": f"PGD-{PROBE_STEPS} on the first {probe_n} samples, one timed call each"},
        "skipped": skipped,
    }
    return {"ratio": t["aisec-lab"] / floor, "details": details}


_ROWS = [("digits_cnn", "pytorch", "digits_cnn, 8x8 digits"), ("digits_cnn", "tensorflow", "digits_cnn, 8x8 digits"),
         ("lenet", "pytorch", "LeNet 431k, 28x28 digits"), ("lenet", "tensorflow", "LeNet 431k, 28x28 digits")]


def _register(workload: str, framework: str, label: str) -> None:
    short = "torch" if framework == "pytorch" else "tf"

    @row(f"p1_{workload}_{short}", f"P1 PGD-20 {label} ({short})", group="P1 attack step", target=1.05,
         better="lower", baseline=f"best hand-written {'torch autograd' if short == 'torch' else 'tf.GradientTape'} loop",
         cuda=framework == "pytorch")
    def _(ctx):
        if ctx.device != "cpu" and framework != "pytorch":
            raise Skip("TensorFlow rows run on the CPU only (tensorflow-cpu)")
        return measure(ctx, framework, workload)


for _w, _f, _l in _ROWS:
    _register(_w, _f, _l)
