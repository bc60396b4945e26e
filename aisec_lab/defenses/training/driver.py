"""The framework-neutral training loop behind :meth:`Recipe.fit` (epochs, validation, checkpoints, resume)."""

from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...data.dataset import Dataset, from_arrays
from ...errors import ConfigError
from ...models.spec import Target
from .recipes import Recipe, TrainingResult, check_eps_scale, fingerprint, now

log = logging.getLogger(__name__)

LAST, BEST = "last.ckpt", "best.ckpt"


def _dataset(data: Any, target, what: str) -> Dataset:
    if isinstance(data, Dataset):
        ds = data
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        ds = from_arrays(data[0], data[1], nb_classes=target.nb_classes, name=what)
    else:
        raise ConfigError(f"{what} must be a Dataset or an (x, y) pair", got=type(data).__name__,
                          fix="use al.load_dataset(...) or al.from_arrays(x, y)")
    target.check_data(ds, what=what)
    if ds.n == 0:
        raise ConfigError(f"{what} is empty", got="0 samples", fix="pass at least one sample")
    return ds


def _split_val(train: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Hold out ``fraction`` of ``train`` (stratified by class when possible) as validation data."""
    from sklearn.model_selection import train_test_split

    n_val = max(1, int(round(train.n * fraction)))
    if n_val >= train.n:
        raise ConfigError("the training data is too small to hold out validation data", got=f"{train.n} samples",
                          fix="pass val_data=... explicitly")
    counts = np.bincount(train.y)
    stratify = train.y if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() else None
    tr, va = train_test_split(np.arange(train.n), test_size=n_val, random_state=seed, stratify=stratify)
    return train.subset(np.sort(tr), split=f"{train.split}-train"), train.subset(np.sort(va), split=f"{train.split}-val")


def fit(recipe: Recipe, target, train_data, *, val_data=None, test_data=None, checkpoint_dir=None,
        eval_attacks="standard", eval_eps=None, eval_n_samples=None, progress=True) -> TrainingResult:
    from ...models import rewrap
    from . import _framework

    if not isinstance(target, Target):
        raise ConfigError("fit() takes a Target (from al.wrap_model)", got=type(target).__name__,
                          fix="wrap the model first: target = al.wrap_model(model, ...)")
    fw = _framework(target.framework)  # refuses black-box targets before any work
    if target.defense is not None:
        raise ConfigError("adversarial training takes the undefended model", got=target.name,
                          fix="pass the target without al.defend(...); apply preprocessing defenses afterwards")
    check_eps_scale(recipe, target)
    train = _dataset(train_data, target, "train_data")
    if val_data is None:
        train, val = _split_val(train, recipe.val_fraction, recipe.seed)
        val_source = f"{recipe.val_fraction:g} of train_data held out (stratified, seed {recipe.seed})"
    else:
        val = _dataset(val_data, target, "val_data")
        val_source = "val_data"
    test = None if test_data is None else _dataset(test_data, target, "test_data")
    if val.n > recipe.val_samples:
        val = val.stratified_sample(recipe.val_samples, seed=recipe.seed)
    eval_eps = [recipe.eps] if eval_eps is None else eval_eps

    model = fw.clone_model(target.model)
    work = rewrap(target, model)
    trainer = fw.Trainer(work, recipe)
    run_id = {"recipe": recipe.card(), "framework": target.framework, "model": target.name,
              "architecture": fw.architecture(model), "initial_weights_sha256": target.weights_sha256,
              "train_sha256": train.sha256, "val_sha256": val.sha256}
    run_fp = fingerprint(run_id)

    history: list[dict] = []
    start_epoch, best = 0, {"epoch": None, "robust": -1.0, "clean": -1.0}
    resumed = None
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        if (ckpt / LAST).exists():
            meta = trainer.load_checkpoint(ckpt / LAST, check=lambda m: _check_same_run(m, run_id, run_fp, ckpt))
            history = meta["history"]
            best = meta["best"]
            start_epoch = resumed = len(history)
            log.info("resuming %s from %s after epoch %d", recipe.name, ckpt, start_epoch)

    before = None
    notes: list[str] = []
    if test is not None:
        before = _scorecard(target, test, recipe, eval_attacks, eval_eps, eval_n_samples, progress)
    else:
        notes.append("no test_data was given: no before/after scorecards; pass test_data=... to measure the "
                     "robustness gained")
        log.warning(notes[-1])

    best_weights = trainer.weights() if best["epoch"] is None else None
    if best["epoch"] is not None and ckpt is not None and (ckpt / BEST).exists():
        best_weights = trainer.read_weights(ckpt / BEST)
    stopped_early = False
    overfit = None
    if history and history[-1].get("stop"):
        stopped_early = history[-1]["stop"] == "early_stopping"
        overfit = history[-1].get("catastrophic_overfitting")
    bar = _bar(recipe.epochs, progress, start_epoch)
    try:
        epoch = start_epoch
        while epoch < recipe.epochs and not (history and history[-1].get("stop")):
            t0 = time.perf_counter()
            lr = recipe.lr_at(epoch)
            trainer.set_lr(lr)
            rng = np.random.default_rng([recipe.seed, epoch])
            stats = trainer.train_epoch(train.x, train.y, rng, epoch=epoch)
            val_rng = np.random.default_rng([recipe.seed, epoch, 1])
            clean_acc, robust_acc = trainer.evaluate(val.x, val.y, val_rng)
            row = {"epoch": epoch + 1, "lr": lr, **stats, "val_clean_accuracy": clean_acc,
                   "val_robust_accuracy": robust_acc, "time_s": time.perf_counter() - t0}
            improved = robust_acc > best["robust"] or (robust_acc == best["robust"] and clean_acc > best["clean"])
            if improved:
                best = {"epoch": epoch + 1, "robust": robust_acc, "clean": clean_acc}
                best_weights = trainer.weights()
                if ckpt is not None:
                    trainer.write_weights(ckpt / BEST, best_weights, {"fingerprint": run_fp, "epoch": epoch + 1})
            elif (best["robust"] - robust_acc > recipe.overfit_drop
                  and clean_acc >= history[best["epoch"] - 1]["val_clean_accuracy"] if best["epoch"] else False):
                overfit = {"epoch": epoch + 1, "val_robust_accuracy": robust_acc, "val_clean_accuracy": clean_acc,
                           "best_epoch": best["epoch"], "best_val_robust_accuracy": best["robust"]}
                row["catastrophic_overfitting"] = overfit
                row["stop"] = "catastrophic_overfitting"
                log.warning("catastrophic overfitting in %s at epoch %d: robust validation accuracy fell from %.3f "
                            "to %.3f while clean accuracy rose; stopping and restoring epoch %d", recipe.name,
                            epoch + 1, best["robust"], robust_acc, best["epoch"])
            if "stop" not in row and recipe.patience is not None and best["epoch"] is not None \
                    and epoch + 1 - best["epoch"] >= recipe.patience and epoch + 1 < recipe.epochs:
                row["stop"] = "early_stopping"
                stopped_early = True
                log.info("early stopping after epoch %d: no robust validation improvement for %d epochs",
                         epoch + 1, recipe.patience)
            history.append(row)
            if ckpt is not None:
                trainer.save_checkpoint(ckpt / LAST, {"fingerprint": run_fp, "run": run_id, "history": history,
                                                      "best": best, "saved_at": now()})
            bar.update(1)
            bar.set_postfix_str(f"loss={stats['train_loss']:.3f} val clean={clean_acc:.3f} robust={robust_acc:.3f}")
            epoch += 1
    finally:
        bar.close()

    if (recipe.restore_best or overfit) and best_weights is not None and best["epoch"] is not None:
        trainer.set_weights(best_weights)
    elif not recipe.restore_best and overfit:
        notes.append("catastrophic overfitting: the best epoch was restored although restore_best=False")
    trained = rewrap(target, model, name=f"{target.name} [{recipe.name}]")
    after = comparison = None
    if test is not None:
        after = _scorecard(trained, test, recipe, eval_attacks, eval_eps, eval_n_samples, progress)
        from ...scorecard.compare import compare

        comparison = compare(before, after)
    if overfit:
        notes.append(f"catastrophic overfitting detected at epoch {overfit['epoch']}: robust validation accuracy "
                     f"{overfit['val_robust_accuracy']:.3f} vs {overfit['best_val_robust_accuracy']:.3f} at epoch "
                     f"{overfit['best_epoch']}; training stopped and epoch {best['epoch']} restored")
    info = {"model": {"name": target.name, "n_params": target.n_params, "architecture": run_id["architecture"],
                      "initial_weights_sha256": target.weights_sha256},
            "data": {"train": train.info(), "val": {**val.info(), "source": val_source},
                     "test": None if test is None else test.info()},
            "evaluation": {"attacks": eval_attacks if isinstance(eval_attacks, str) else
                           [getattr(a, "label", a) for a in eval_attacks],
                           "eps": list(eval_eps) if isinstance(eval_eps, (list, tuple)) else [eval_eps],
                           "norm": recipe.norm, "n_samples": eval_n_samples},
            "versions": _versions(target.framework), "trained_at": now()}
    return TrainingResult(recipe=recipe, model=model, target=trained, history=history, framework=target.framework,
                          scorecard_before=before, scorecard_after=after, comparison=comparison,
                          best_epoch=best["epoch"], stopped_early=stopped_early, catastrophic_overfitting=overfit,
                          resumed_from_epoch=resumed, notes=notes, info=info)


def _check_same_run(meta: dict, run_id: dict, run_fp: str, ckpt: Path) -> None:
    if meta.get("fingerprint") == run_fp:
        return
    old = meta.get("run") or {}
    diffs = [k for k in run_id if json.dumps(old.get(k), sort_keys=True, default=str)
             != json.dumps(run_id[k], sort_keys=True, default=str)]
    what = ", ".join(diffs) or "fingerprint"
    raise ConfigError(f"{ckpt / LAST} is a checkpoint of a different run (differs in: {what})",
                      got=f"checkpoint for {old.get('model')!r} ({old.get('framework')}) vs this run for "
                          f"{run_id['model']!r} ({run_id['framework']})",
                      fix="use a new checkpoint_dir for this model/data/recipe, or delete the old checkpoints")


def _scorecard(target, test, recipe, attacks, eps, n_samples, progress):
    from ...evaluation import evaluate

    return evaluate(target, test, attacks=attacks, eps=eps, norm=recipe.norm, n_samples=n_samples, seed=recipe.seed,
                    progress=progress)


def _bar(total: int, enabled: bool, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="adversarial training", unit="epoch",
                disable=not enabled or None, leave=False)


def _versions(framework: str) -> dict:
    from importlib import metadata

    from ..._version import __version__

    out = {"aisec-lab": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for dist in (("torch",) if framework == "pytorch" else ("tensorflow-cpu", "tensorflow", "keras")):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out
