"""Framework-free NumPy attack kernels: pure functions ``(oracle, x, y, **hyperparameters) -> x_adv`` over an
:class:`~aisec_lab.attacks.oracle.Oracle` (``linf`` or ``l2`` threat model, float32 output within the eps-ball and
the clip box).

* :func:`fgsm`, :func:`pgd` (:mod:`.gradient`) -- FGSM and PGD with random restarts (white-box, gradients);
* :func:`apgd`, :func:`apgd_checkpoints` (:mod:`.apgd`) -- Auto-PGD (Croce & Hein 2020) and its step-size checkpoints;
* :func:`square`, :func:`p_selection` (:mod:`.square`) -- Square Attack (score-based black-box) and its schedule;
* :func:`uniform_noise`, :func:`gaussian_noise` (:mod:`.noise`) -- random-noise baselines.

The helpers they share (argument checks, norms, projection with float32 repair, best-point bookkeeping) are in
:mod:`._common`.
"""

from aisec_lab.attacks.kernels.apgd import apgd, apgd_checkpoints
from aisec_lab.attacks.kernels.gradient import fgsm, pgd
from aisec_lab.attacks.kernels.noise import gaussian_noise, uniform_noise
from aisec_lab.attacks.kernels.square import p_selection, square

__all__ = ["fgsm", "pgd", "apgd", "apgd_checkpoints", "square", "p_selection", "uniform_noise", "gaussian_noise"]
