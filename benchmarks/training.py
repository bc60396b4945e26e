"""P4 -- training: one PGD-AT epoch of the ``pgd_at`` recipe vs the same epoch written by hand.

``al.recipes.get("pgd_at", eps=0.1)`` with its defaults (batch 64, PGD-10 with a random start and step
2.5 * eps / 10, Adam 1e-3) on ``digits_cnn`` over the 1,347 bundled training digits. Contenders, round-robin:

``aisec-lab``          ``Trainer.train_epoch`` of ``aisec_lab/defenses/training/<framework>.py``, built exactly as
                       ``recipe.fit`` builds it: the epoch itself, without validation or checkpoints.
``hand-written``       the same algorithm in plain torch / a compiled ``tf.function`` step
                       (``loops_torch.HandPGDAT`` / ``loops_tensorflow.HandPGDAT``), same batch size and threads.
``aisec-lab fit()``    ``recipe.fit(target, train, epochs=1)``: the user-facing call, which also holds out 10 % for
                       validation and attacks it (PGD-10 on 135 samples) after the epoch, and copies the model
                       (reported, not the target).

Ratio: aisec-lab epoch / hand-written epoch (lower is better; targets <= 1.15 torch, <= 1.3 Keras).
"""

from __future__ import annotations

import logging

import numpy as np

from .attack_step import framework_modules
from .suite import medians, race, row

EPS = 0.1


def measure(ctx, framework: str) -> dict:
    import aisec_lab as al

    from . import workloads

    models, loops = framework_modules(framework)
    train = workloads.digits(None, split="train")
    if ctx.quick:
        train = train.stratified_sample(512, seed=0)
    x, y = np.ascontiguousarray(train.x, np.float32), np.asarray(train.y, np.int64)
    target = models.zoo_target("digits_cnn", "cpu")
    recipe = al.recipes.get("pgd_at", eps=EPS, epochs=1, patience=None, seed=ctx.seed)
    trainer = loops.library_trainer(target, recipe)
    hand = loops.HandPGDAT(loops.native_model(target), eps=EPS, steps=recipe.max_iter,
                           batch_size=recipe.batch_size, lr=recipe.learning_rate)
    hx, hy = hand.data(x, y)
    epochs = iter(range(10**6))

    def aisec():
        e = next(epochs)
        return trainer.train_epoch(x, y, np.random.default_rng([ctx.seed, e]), epoch=e)

    def handwritten():
        return hand.epoch(hx, hy, np.random.default_rng([ctx.seed, next(epochs)]))

    def fit():
        quiet = logging.getLogger("aisec_lab.defenses.training.driver")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # "no test_data was given": deliberate here
        try:
            return recipe.fit(target, train, progress=False)
        finally:
            quiet.setLevel(level)

    k = min(len(x), 2 * recipe.batch_size + 1)  # two full batches and a partial one: every batch shape
    warm = {"aisec-lab": lambda: trainer.train_epoch(x[:k], y[:k], np.random.default_rng(0), epoch=0),
            "hand-written": lambda: hand.epoch(hx[:k], hy[:k], np.random.default_rng(0)),
            "aisec-lab fit()": None}
    # the last partial batch of a full epoch has its own shape: warm it too (tf.function traces per shape)
    rest = len(x) % recipe.batch_size
    if rest:
        warm_rest = {"aisec-lab": lambda: trainer.train_epoch(x[:rest], y[:rest], np.random.default_rng(1), epoch=0),
                     "hand-written": lambda: hand.epoch(hx[:rest], hy[:rest], np.random.default_rng(1))}
        for name, fn in warm_rest.items():
            fn()
    contenders = {"aisec-lab": aisec, "hand-written": handwritten, "aisec-lab fit()": fit}
    if not ctx.quick:  # fit() once more to warm it (model copy, validation split) outside the timed runs
        warm["aisec-lab fit()"] = fit
    res = race(contenders, repeats=ctx.repeats, warmup=warm)
    t = medians(res)
    details = {
        "framework": framework, "model": target.name, "n_train": len(x), "recipe": recipe.params(),
        "eps_step": recipe.step, "repeats": ctx.repeats, "median_s": t,
        "times_s": {k_: v["times_s"] for k_, v in res.items()},
        "fit_over_hand_written_epoch": round(t["aisec-lab fit()"] / t["hand-written"], 3),
        "train_loss_last_epoch": {"aisec-lab": round(res["aisec-lab"]["last"]["train_loss"], 4),
                                  "hand-written": round(float(res["hand-written"]["last"]), 4)},
    }
    return {"ratio": t["aisec-lab"] / t["hand-written"], "details": details}


@row("p4_pgd_at_torch", "P4 PGD-AT epoch, digits_cnn (torch)", group="P4 training", target=1.15, better="lower",
     baseline="hand-written torch PGD-AT epoch")
def p4_torch(ctx):
    return measure(ctx, "pytorch")


@row("p4_pgd_at_keras", "P4 PGD-AT epoch, digits_cnn (Keras)", group="P4 training", target=1.3, better="lower",
     baseline="hand-written tf.function PGD-AT epoch")
def p4_keras(ctx):
    return measure(ctx, "tensorflow")
