"""The built-in attack catalog.

Hot attacks (FGSM, PGD, APGD-CE/DLR, Square, noise baselines) run on the native NumPy kernels in
``attacks/kernels`` over the target's oracle: one forward (+ backward) pass per step or query, no
parameter gradients, batched. The long tail (C&W, DeepFool, HopSkipJump, Boundary, and the L1 variants
of FGSM/PGD/APGD) runs through ART, with inputs cast to float32 at the model boundary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._seeding import numpy_global_seed

from ..errors import AisecLabError, IncompatibleModelError
from .registry import register_attack
from .spec import ART_NORMS, AttackSpec, check_choice, check_int, check_positive

log = logging.getLogger(__name__)

__all__ = ["FGSM", "PGD", "APGDCE", "APGDDLR", "CarliniL2", "DeepFool", "Square", "HopSkipJump", "Boundary",
           "UniformNoise", "GaussianNoise"]


def _onehot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def _art_generate(spec: AttackSpec, target: Any, attack: Any, x: np.ndarray, y: np.ndarray,
                  y_target: np.ndarray | None) -> np.ndarray:
    """Run an ART attack, translating its failures into aisec-lab errors."""
    labels = y_target if y_target is not None else y
    try:
        out = attack.generate(x=np.asarray(x, dtype=np.float32), y=_onehot(labels, target.nb_classes))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise AisecLabError(f"ART's implementation of {spec.name!r} failed on target {target.name!r}",
                            got=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                            fix="check the attack's hyperparameters (describe_attack) and the target's clip_values") from None
    return np.asarray(out, dtype=np.float32)


# ART's decision-based attacks draw from NumPy's global generator: seed it around each call
_numpy_global_seed = numpy_global_seed


def _kernels():
    from . import kernels

    return kernels


# ---------------------------------------------------------------------------------------------
@register_attack("fgsm")
@dataclass(frozen=True, kw_only=True)
class FGSM(AttackSpec):
    """Fast gradient sign method: one step of size ε along the sign (L∞) or the normalised gradient (L2/L1).

    Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.
    Native for L∞/L2; ART's FastGradientMethod for L1. A baseline: a model that resists PGD but not
    FGSM is fine; the reverse is a warning sign (gradient masking).
    """

    name = "fgsm"
    norms = ("linf", "l2", "l1")
    cost_rank = 1
    reference = "Goodfellow et al., ICLR 2015, arXiv:1412.6572"

    loss: str = "ce"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "loss", ("ce", "margin", "dlr"))

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        if norm == "l1":
            from art.attacks.evasion import FastGradientMethod

            attack = FastGradientMethod(target.estimator, norm=1, eps=eps, eps_step=eps, targeted=self.targeted,
                                        batch_size=self.batch_size or 128)
            with _numpy_global_seed(seed):
                return _art_generate(self, target, attack, x, y, y_target)
        return _kernels().fgsm(target.oracle, x, y, norm=norm, eps=eps, loss=self.loss, y_target=y_target)


@register_attack("pgd")
@dataclass(frozen=True, kw_only=True)
class PGD(AttackSpec):
    """Projected gradient descent with random starts (Madry et al.), L∞ / L2 native, L1 through ART.

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to Adversarial
    Attacks", ICLR 2018. ``eps_step=None`` uses 2.5·ε/max_iter; ``num_random_init`` is the number of
    random restarts (0: start at the clean input).
    """

    name = "pgd"
    norms = ("linf", "l2", "l1")
    cost_rank = 10
    reference = "Madry et al., ICLR 2018, arXiv:1706.06083"

    max_iter: int = 40
    eps_step: float | None = None
    num_random_init: int = 1
    loss: str = "ce"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "max_iter", 1)
        check_int(self, "num_random_init", 0)
        check_positive(self, "eps_step", allow_none=True)
        check_choice(self, "loss", ("ce", "margin", "dlr"))

    def step_for(self, eps: float) -> float:
        return float(self.eps_step) if self.eps_step is not None else 2.5 * eps / self.max_iter

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        if norm == "l1":
            from art.attacks.evasion import ProjectedGradientDescent

            attack = ProjectedGradientDescent(target.estimator, norm=1, eps=eps, eps_step=self.step_for(eps),
                                              max_iter=self.max_iter, targeted=self.targeted,
                                              num_random_init=self.num_random_init,
                                              batch_size=self.batch_size or 128, verbose=False)
            with _numpy_global_seed(seed):
                return _art_generate(self, target, attack, x, y, y_target)
        return _kernels().pgd(target.oracle, x, y, norm=norm, eps=eps, eps_step=self.step_for(eps),
                              max_iter=self.max_iter, num_random_init=self.num_random_init, loss=self.loss,
                              y_target=y_target, seed=seed)


@dataclass(frozen=True, kw_only=True)
class _APGD(AttackSpec):
    norms = ("linf", "l2", "l1")
    reference = "Croce & Hein, ICML 2020, arXiv:2003.01690"
    loss_name = "ce"

    max_iter: int = 100
    n_restarts: int = 1
    rho: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "max_iter", 1)
        check_int(self, "n_restarts", 1)
        check_positive(self, "rho")

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        if norm == "l1":
            from art.attacks.evasion import AutoProjectedGradientDescent

            attack = AutoProjectedGradientDescent(
                target.estimator, norm=1, eps=eps, eps_step=2 * eps, max_iter=self.max_iter, targeted=self.targeted,
                nb_random_init=self.n_restarts, batch_size=self.batch_size or 128,
                loss_type="cross_entropy" if self.loss_name == "ce" else "difference_logits_ratio", verbose=False)
            with _numpy_global_seed(seed):
                return _art_generate(self, target, attack, x, y, y_target)
        return _kernels().apgd(target.oracle, x, y, norm=norm, eps=eps, max_iter=self.max_iter,
                               loss=self.loss_name, y_target=y_target, n_restarts=self.n_restarts, rho=self.rho,
                               seed=seed)


@register_attack("apgd_ce")
@dataclass(frozen=True, kw_only=True)
class APGDCE(_APGD):
    """Auto-PGD on the cross-entropy loss: step-size free PGD with momentum and adaptive step halving.

    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020. First stage of AutoAttack. Native for L∞/L2, ART for L1.
    """

    name = "apgd_ce"
    cost_rank = 20
    loss_name = "ce"


@register_attack("apgd_dlr")
@dataclass(frozen=True, kw_only=True)
class APGDDLR(_APGD):
    """Auto-PGD on the difference-of-logits-ratio loss (scale invariant); targeted with ``target="top"`` is APGD-T.

    Croce & Hein, ICML 2020. The DLR loss needs at least 3 classes (4 when targeted). Native for
    L∞/L2, ART for L1.
    """

    name = "apgd_dlr"
    cost_rank = 30
    loss_name = "dlr"

    def check(self, target, norm):
        super().check(target, norm)
        need = 4 if self.targeted else 3
        if target.nb_classes < need:
            raise IncompatibleModelError(f"the DLR loss needs at least {need} classes", got=target.nb_classes,
                                         fix="use apgd_ce for models with fewer classes")


@register_attack("square")
@dataclass(frozen=True, kw_only=True)
class Square(AttackSpec):
    """Square Attack: score-based random search with localized square updates (black-box).

    Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box adversarial
    attack via random search", ECCV 2020. ``max_iter`` is the query budget per sample. Native and
    batched: one forward pass per iteration over all samples still being attacked.
    """

    name = "square"
    norms = ("linf", "l2")
    knowledge = "black-box"
    needs = "scores"
    cost_rank = 40
    reference = "Andriushchenko et al., ECCV 2020, arXiv:1912.00049"
    atlas_technique = "AML.T0043.001"

    max_iter: int = 5000
    p_init: float | None = None
    n_restarts: int = 1
    loss: str = "margin"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "max_iter", 1)
        check_int(self, "n_restarts", 1)
        check_positive(self, "p_init", allow_none=True)
        check_choice(self, "loss", ("margin", "ce"))

    def query_budget(self) -> int:
        return (self.max_iter + 1) * self.n_restarts

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        return _kernels().square(target.oracle, x, y, norm=norm, eps=eps, max_iter=self.max_iter,
                                 p_init=self.p_init, loss=self.loss, y_target=y_target, n_restarts=self.n_restarts,
                                 seed=seed)


@dataclass(frozen=True, kw_only=True)
class _Noise(AttackSpec):
    norms = ("linf", "l2")
    knowledge = "baseline"
    needs = "decisions"
    cost_rank = 0
    atlas_technique = "AML.T0043"
    reference = "baseline: random perturbations on the ε-sphere (Carlini et al., arXiv:1902.06705, section 4)"
    kernel_name = ""

    n_trials: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "n_trials", 1)

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        fn = getattr(_kernels(), self.kernel_name)
        return fn(target.oracle, x, y, norm=norm, eps=eps, n_trials=self.n_trials, seed=seed, y_target=y_target)


@register_attack("uniform_noise")
@dataclass(frozen=True, kw_only=True)
class UniformNoise(_Noise):
    """Noise baseline: ``n_trials`` uniform random perturbations of size ε; any attack must beat it."""

    name = "uniform_noise"
    kernel_name = "uniform_noise"


@register_attack("gaussian_noise")
@dataclass(frozen=True, kw_only=True)
class GaussianNoise(_Noise):
    """Noise baseline: ``n_trials`` Gaussian perturbations rescaled to size ε; any attack must beat it."""

    name = "gaussian_noise"
    kernel_name = "gaussian_noise"


# -- ART long tail: minimum-norm attacks, run once per sample and checked against every ε -----------
@register_attack("cw_l2")
@dataclass(frozen=True, kw_only=True)
class CarliniL2(AttackSpec):
    """Carlini & Wagner L2: minimum-norm optimisation attack (through ART's CarliniL2Method).

    Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
    Minimum-norm: the adversarial example found per sample is projected onto each ε-ball and kept
    where it still fools the model.
    """

    name = "cw_l2"
    norms = ("l2",)
    minimal = True
    cost_rank = 60
    implementation = "art"
    reference = "Carlini & Wagner, IEEE S&P 2017, arXiv:1608.04644"

    confidence: float = 0.0
    learning_rate: float = 0.01
    binary_search_steps: int = 9
    max_iter: int = 100
    initial_const: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "max_iter", 1)
        check_int(self, "binary_search_steps", 1)
        check_positive(self, "learning_rate")
        check_positive(self, "initial_const")
        check_positive(self, "confidence", allow_zero=True)

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        from art.attacks.evasion import CarliniL2Method

        attack = CarliniL2Method(target.estimator, confidence=self.confidence, targeted=self.targeted,
                                 learning_rate=self.learning_rate, binary_search_steps=self.binary_search_steps,
                                 max_iter=self.max_iter, initial_const=self.initial_const,
                                 batch_size=self.batch_size or 128, verbose=False)
        with _numpy_global_seed(seed):
            return _art_generate(self, target, attack, x, y, y_target)


@register_attack("deepfool")
@dataclass(frozen=True, kw_only=True)
class DeepFool(AttackSpec):
    """DeepFool: iterative linearisation towards the closest decision boundary (L2, through ART).

    Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool deep neural
    networks", CVPR 2016. Minimum-norm; untargeted only. ``epsilon`` is the overshoot.
    """

    name = "deepfool"
    norms = ("l2",)
    minimal = True
    supports_targeted = False
    cost_rank = 25
    implementation = "art"
    reference = "Moosavi-Dezfooli et al., CVPR 2016, arXiv:1511.04599"

    max_iter: int = 50
    epsilon: float = 0.02
    nb_grads: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "max_iter", 1)
        check_int(self, "nb_grads", 1)
        check_positive(self, "epsilon", allow_zero=True)

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        from art.attacks.evasion import DeepFool as ArtDeepFool

        attack = ArtDeepFool(target.estimator, max_iter=self.max_iter, epsilon=self.epsilon,
                             nb_grads=min(self.nb_grads, target.nb_classes), batch_size=self.batch_size or 128,
                             verbose=False)
        with _numpy_global_seed(seed):
            return _art_generate(self, target, attack, x, y, None)


@register_attack("hop_skip_jump")
@dataclass(frozen=True, kw_only=True)
class HopSkipJump(AttackSpec):
    """HopSkipJump: decision-based (labels only) minimum-norm attack, L2 or L∞ (through ART).

    Chen, Jordan & Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
    IEEE S&P 2020. Needs only predicted labels, so it also runs on ``wrap_predict`` targets.
    """

    name = "hop_skip_jump"
    norms = ("l2", "linf")
    knowledge = "black-box"
    needs = "decisions"
    minimal = True
    cost_rank = 70
    implementation = "art"
    reference = "Chen et al., IEEE S&P 2020, arXiv:1904.02144"
    atlas_technique = "AML.T0043.001"

    max_iter: int = 50
    max_eval: int = 10000
    init_eval: int = 100
    init_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("max_iter", "max_eval", "init_eval", "init_size"):
            check_int(self, f, 1)

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        from art.attacks.evasion import HopSkipJump as ArtHSJ

        attack = ArtHSJ(target.estimator, targeted=self.targeted, norm=ART_NORMS[norm], max_iter=self.max_iter,
                        max_eval=self.max_eval, init_eval=self.init_eval, init_size=self.init_size,
                        batch_size=self.batch_size or 64, verbose=False)
        with _numpy_global_seed(seed):
            return _art_generate(self, target, attack, x, y, y_target)


@register_attack("boundary")
@dataclass(frozen=True, kw_only=True)
class Boundary(AttackSpec):
    """Boundary attack: decision-based random walk along the decision boundary (L2, through ART).

    Brendel, Rauber & Bethge, "Decision-Based Adversarial Attacks: Reliable Attacks Against Black-Box
    Machine Learning Models", ICLR 2018. Minimum-norm; needs only predicted labels.
    """

    name = "boundary"
    norms = ("l2",)
    knowledge = "black-box"
    needs = "decisions"
    minimal = True
    cost_rank = 80
    implementation = "art"
    reference = "Brendel et al., ICLR 2018, arXiv:1712.04248"
    atlas_technique = "AML.T0043.001"

    max_iter: int = 1000
    delta: float = 0.01
    epsilon: float = 0.01
    step_adapt: float = 0.667
    num_trial: int = 25
    sample_size: int = 20
    init_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("max_iter", "num_trial", "sample_size", "init_size"):
            check_int(self, f, 1)
        for f in ("delta", "epsilon", "step_adapt"):
            check_positive(self, f)

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        from art.attacks.evasion import BoundaryAttack

        attack = BoundaryAttack(target.estimator, batch_size=self.batch_size or 64, targeted=self.targeted,
                                delta=self.delta, epsilon=self.epsilon, step_adapt=self.step_adapt,
                                max_iter=self.max_iter, num_trial=self.num_trial, sample_size=self.sample_size,
                                init_size=self.init_size, verbose=False)
        with _numpy_global_seed(seed):
            return _art_generate(self, target, attack, x, y, y_target)

