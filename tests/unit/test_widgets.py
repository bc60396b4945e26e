"""The explorer, headless: build it, set its controls as a user would, assert what it computed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.attacks.spec import AttackSpec

pytest.importorskip("ipywidgets")
pytest.importorskip("torch")

from aisec_lab.widgets import FAST_DEFAULTS, Explorer, ExplorerState  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "scorecard_small.json"
EPS = [0.05, 0.1, 0.2, 0.3]


@pytest.fixture(scope="module")
def target(zoo_targets):
    return zoo_targets("digits_cnn", "pytorch")


@pytest.fixture(scope="module")
def data(digits_test):
    return digits_test.subset(np.arange(40))


@pytest.fixture(scope="module")
def explorer(target, data):
    return Explorer(target, data, attacks=["fgsm", "pgd", "square"], eps_values=EPS, seed=0)


@pytest.fixture(scope="module")
def vulnerable(explorer):
    """The first sample PGD breaks at the largest ε."""
    for i in range(len(explorer.x)):
        if explorer.compute("pgd", max(EPS), i).success:
            return i
    pytest.fail("PGD broke none of the first 40 digits at eps=0.3")


@dataclass(frozen=True, kw_only=True)
class _Counting(AttackSpec):
    """A fake attack that records its calls and moves every pixel by +eps (clipped)."""

    name: ClassVar[str] = "counting"
    needs: ClassVar[str] = "decisions"
    calls: ClassVar[list] = []

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        type(self).calls.append((len(x), eps, seed))
        return np.clip(x + eps, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class _Failing(AttackSpec):
    name: ClassVar[str] = "failing"
    needs: ClassVar[str] = "decisions"

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        raise RuntimeError("kaboom")


# -- construction -------------------------------------------------------------------------------------------
def test_constructs_a_widget_with_the_controls_and_an_initial_state(explorer, data):
    import ipywidgets as widgets

    assert isinstance(explorer.widget, widgets.VBox)
    assert explorer.attack_dropdown.options == ("fgsm", "pgd", "square")
    assert explorer.attack_dropdown.value == "pgd"  # PGD is the first look when offered
    assert explorer.eps_slider.min == 0.0 and explorer.eps_slider.max == pytest.approx(0.3)
    assert explorer.index_slider.max == len(data) - 1
    assert isinstance(explorer.state, ExplorerState)
    assert bytes(explorer.image.value).startswith(b"\x89PNG")
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle
    assert "Explorer(" in bundle["text/plain"]


def test_default_attacks_are_those_that_fit_the_norm_and_the_target(target, data):
    ex = Explorer(target, data, eps_values=EPS, attack="fgsm")
    assert set(ex.attacks) <= set(al.list_attacks("linf"))
    assert {"fgsm", "pgd", "square"} <= set(ex.attacks)
    assert "cw_l2" not in ex.attacks  # L2 only
    # attacks named get the fast defaults; specs run as given
    assert ex.specs["pgd"].max_iter == FAST_DEFAULTS["pgd"]["max_iter"]
    assert ex.specs["square"].max_iter == FAST_DEFAULTS["square"]["max_iter"]
    spec = al.attack("pgd", max_iter=7)
    assert Explorer(target, data, attacks=[spec], eps_values=EPS).specs["pgd"].max_iter == 7


def test_default_eps_sweep_scales_with_the_input_range(target, data):
    ex = Explorer(target, data, attacks=["fgsm"])
    assert ex.eps_values == [0.05, 0.1, 0.2, 0.3]
    assert ex.eps_slider.value == 0.2


# -- the computed state --------------------------------------------------------------------------------------
def test_eps_zero_leaves_the_prediction_unchanged_and_no_perturbation(explorer, vulnerable):
    explorer.select(attack="pgd", index=vulnerable)
    explorer.eps_slider.value = 0.0
    s = explorer.state
    assert (s.attack, s.eps, s.index) == ("pgd", 0.0, vulnerable)
    assert s.adv_pred == s.clean_pred and not s.flipped and not s.success
    assert np.all(s.perturbation == 0) and s.linf == 0 and s.l2 == 0
    np.testing.assert_array_equal(s.x_adv, s.x)
    assert s.adv_conf == pytest.approx(s.clean_conf)


def test_larger_eps_on_a_vulnerable_sample_flips_the_prediction(explorer, vulnerable):
    explorer.select(attack="pgd", eps=0.0, index=vulnerable)
    assert not explorer.state.flipped
    explorer.eps_slider.value = 0.3
    s = explorer.state
    assert s.eps == pytest.approx(0.3)
    assert s.clean_pred == s.label and s.clean_correct
    assert s.adv_pred != s.label and s.flipped and s.success and s.verdict == "broken"
    probs = explorer.target.predict(s.x_adv[None])[0]
    assert int(np.argmax(probs)) == s.adv_pred
    assert s.adv_probs.sum() == pytest.approx(1.0) and s.clean_probs.sum() == pytest.approx(1.0)
    assert 0.0 < s.adv_conf <= 1.0 and s.adv_conf == pytest.approx(float(s.adv_probs.max()))


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "square"])
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_the_perturbation_respects_eps_and_clip_values(explorer, attack, eps):
    s = explorer.compute(attack, eps, 3)
    assert s.linf <= eps + 1e-5 and s.within_eps
    assert s.x_adv.min() >= 0.0 - 1e-6 and s.x_adv.max() <= 1.0 + 1e-6 and s.in_clip
    np.testing.assert_allclose(s.perturbation, s.x_adv - s.x, atol=1e-6)
    assert s.x.shape == s.x_adv.shape == s.perturbation.shape == explorer.target.input_shape


def test_changing_the_dropdown_changes_the_attack_used(explorer):
    explorer.select(attack="fgsm", eps=0.1, index=5)
    fgsm = explorer.state
    assert fgsm.attack == "fgsm" and "max_iter" not in fgsm.params
    explorer.attack_dropdown.value = "pgd"
    pgd = explorer.state
    assert pgd.attack == "pgd" and pgd.params["max_iter"] == FAST_DEFAULTS["pgd"]["max_iter"]
    assert (pgd.eps, pgd.index) == (fgsm.eps, fgsm.index)
    assert not np.array_equal(pgd.x_adv, fgsm.x_adv)  # FGSM is one signed step; PGD random-starts and iterates


def test_index_slider_selects_the_sample(explorer, data):
    explorer.select(attack="fgsm", eps=0.1)
    explorer.index_slider.value = 7
    s = explorer.state
    assert s.index == 7 and s.label == int(data.y[7])
    np.testing.assert_array_equal(s.x, data.x[7])


def test_results_are_cached_per_attack_eps_and_index(target, data):
    _Counting.calls.clear()
    ex = Explorer(target, data, attacks=[_Counting()], eps_values=EPS, eps=0.1, index=0)
    assert _Counting.calls == [(1, 0.1, 0)]  # a batch of one, the explorer's seed
    ex.eps_slider.value = 0.2
    ex.index_slider.value = 1
    assert len(_Counting.calls) == 3
    ex.select(eps=0.1, index=0)
    a = ex.compute("counting", 0.2, 1)
    assert len(_Counting.calls) == 3  # all seen before
    assert a.eps == 0.2 and a.index == 1
    ex.select(eps=0.05, index=2)  # several controls at once: one computation
    assert len(_Counting.calls) == 4
    ex.compute("counting", 0.0, 2)  # eps = 0 runs nothing
    assert len(_Counting.calls) == 4
    state = ex.state
    s = ex.compute(al.attack("fgsm"), 0.1, 0)  # a new spec joins the dropdown; the selection stays
    assert s.attack == "fgsm" and ex.attack_dropdown.options == ("counting", "fgsm")
    assert ex.attack_dropdown.value == "counting" and ex.state is state and len(_Counting.calls) == 4


def test_a_failing_attack_is_shown_not_raised(target, data):
    ex = Explorer(target, data, attacks=["fgsm", _Failing()], eps_values=EPS, attack="fgsm")
    before = ex.state
    ex.attack_dropdown.value = "failing"
    assert isinstance(ex.error, RuntimeError)
    assert "kaboom" in ex.status.value
    assert ex.state is before
    ex.attack_dropdown.value = "fgsm"
    assert ex.error is None and ex.state.attack == "fgsm"


def test_minimal_norm_attack_outside_eps_does_not_count(target, data):
    @dataclass(frozen=True, kw_only=True)
    class _Minimal(_Counting):
        name: ClassVar[str] = "minimal"
        minimal: ClassVar[bool] = True

        def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
            return np.clip(x + 0.5, 0.0, 1.0).astype(np.float32)  # whatever ε: a big step

    ex = Explorer(target, data, attacks=[_Minimal()], eps_values=EPS, eps=0.1)
    s = ex.state
    assert s.minimal and s.linf > 0.1 and not s.within_eps and not s.success


# -- bad input ------------------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors(explorer, target, data):
    with pytest.raises(al.UnknownComponentError, match="did you mean 'pgd'"):
        explorer.compute("pdg", 0.1, 0)
    with pytest.raises(al.ConfigError, match="ε must be"):
        explorer.compute("pgd", -0.1, 0)
    with pytest.raises(al.ConfigError, match="out of range"):
        explorer.compute("pgd", 0.1, len(data))
    with pytest.raises(al.ConfigError, match="does not support the linf norm"):
        Explorer(target, data, attacks=["cw_l2"])
    with pytest.raises(al.UnknownComponentError, match="did you mean"):
        Explorer(target, data, attacks=["sqare"])
    with pytest.raises(al.ConfigError, match="pixel units"):
        Explorer(target, data, attacks=["fgsm"], eps_values=[8, 16])
    with pytest.raises(al.ConfigError, match="Dataset or a pair"):
        Explorer(target, data.x, attacks=["fgsm"])
    with pytest.raises(al.IncompatibleModelError, match="wrapped target"):
        Explorer(object(), data, attacks=["fgsm"])


# -- figures --------------------------------------------------------------------------------------------------
def test_render_has_three_image_axes_and_a_probability_chart(explorer):
    from matplotlib.figure import Figure

    fig = explorer.render(explorer.compute("pgd", 0.2, 0))
    assert isinstance(fig, Figure)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 3
    assert [t.get_text().split(":")[0] for t in (ax.title for ax in images)][0] == "clean"
    bars = [ax for ax in fig.axes if ax.patches]
    assert len(bars) == 1 and len(bars[0].patches) == 2 * 10


def test_given_scorecard_shows_its_curve_with_the_current_eps(target, data):
    card = al.Scorecard.load(FIXTURE)
    ex = Explorer(target, data, attacks=["fgsm"], eps_values=EPS, scorecard=card, eps=0.1)
    assert ex.robustness_scorecard() is card
    assert bytes(ex.curve_image.value).startswith(b"\x89PNG") and ex.curve_image.layout.display is None
    fig = ex.curve_figure(eps=0.1)
    xs = [line.get_xdata()[0] for line in fig.axes[0].lines if len(line.get_xdata()) == 2
          and line.get_xdata()[0] == line.get_xdata()[1]]
    assert 0.1 in xs  # the explorer's ε, marked


def test_curve_is_computed_lazily_by_a_tiny_evaluation(target, data):
    ex = Explorer(target, data, attacks=["fgsm"], eps_values=[0.0, 0.1, 0.3], curve_samples=12)
    assert ex.curve_image.layout.display == "none" and not ex._curve_cards
    ex.curve_button.click()
    assert ex.curve_error is None and bytes(ex.curve_image.value).startswith(b"\x89PNG")
    card = ex.robustness_scorecard()
    assert isinstance(card, al.Scorecard)
    assert card.eps == [0.1, 0.3] and card.attacks == ["fgsm"] and card.clean["n"] == 12
    assert card.robust_accuracy(0.3) <= card.robust_accuracy(0.1) <= card.clean_accuracy
    assert ex.robustness_scorecard() is card  # computed once per attack


# -- non-image inputs and black-box targets -------------------------------------------------------------------
def test_flat_features_on_a_black_box_target():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3)).astype(np.float32)
    target = al.wrap_predict(lambda x: x @ w, input_shape=(6,), nb_classes=3, clip_values=(0.0, 1.0), name="linear")
    x = rng.random((10, 6), dtype=np.float32)
    y = (x @ w).argmax(axis=1)
    ex = Explorer(target, (x, y), eps_values=[0.1, 0.5])
    assert "pgd" not in ex.attacks and "square" in ex.attacks  # no gradients
    fig = ex.render(ex.state)
    assert not [ax for ax in fig.axes if ax.images] and len(fig.axes) == 4


# -- import hygiene -------------------------------------------------------------------------------------------
def test_importing_the_module_loads_neither_ipywidgets_nor_matplotlib():
    code = textwrap.dedent("""
        import sys, aisec_lab, aisec_lab.widgets
        print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'ipywidgets', 'matplotlib', 'torch', 'art'})))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
