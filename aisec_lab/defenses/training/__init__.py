"""Adversarial-training recipes for torch and Keras 3: ``al.recipes``.

```python
recipe = al.recipes.get("pgd_at", eps=0.1, epochs=10, seed=0)      # or "trades", "fast_at"
result = recipe.fit(target, train_ds, val_data=val_ds, test_data=test_ds, checkpoint_dir="runs/at/ckpt")
result.save("runs/at")
again = al.recipes.from_card("runs/at/recipe.yaml")                  # the same recipe, every hyperparameter
```

The framework-neutral driver (epochs, validation, early stopping, catastrophic-overfitting detection,
checkpoints and resume, recipe cards, before/after scorecards) lives in ``recipes.py``; the training
steps themselves in ``pytorch.py`` and ``tensorflow.py`` behind one small interface.
"""

from __future__ import annotations

from .recipes import (
    RECIPES,
    CARD_VERSION,
    Recipe,
    TrainingResult,
    describe,
    from_card,
    get,
    list_recipes,
)

__all__ = ["RECIPES", "CARD_VERSION", "Recipe", "TrainingResult", "describe", "from_card", "get", "list_recipes"]


def _framework(framework: str):
    """The training module of ``framework`` (imports torch or tensorflow only when called)."""
    import importlib

    from ...errors import IncompatibleModelError

    modules = {"pytorch": "pytorch", "tensorflow": "tensorflow"}
    if framework not in modules:
        raise IncompatibleModelError("adversarial-training recipes train torch and Keras models",
                                     got=f"a {framework!r} target",
                                     fix="wrap a torch nn.Module or a keras.Model with al.wrap_model; a black-box "
                                         "predict function cannot be trained")
    return importlib.import_module(f"{__name__}.{modules[framework]}")
