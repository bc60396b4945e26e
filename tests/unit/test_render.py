"""Scorecard renderers: Markdown (golden file), self-contained HTML, matplotlib plots, headless Chromium.

The record is the small real scorecard in ``tests/data``; hostile variants rename the model and an
attack to strings that would inject markup if any renderer forgot to escape them.
Set ``AISEC_LAB_UPDATE_GOLDEN=1`` to rewrite ``tests/data/golden/scorecard_small.md`` after an intended
change of the Markdown output (then read the diff before committing it).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")

from aisec_lab.scorecard.render import (  # noqa: E402
    figure_png_base64,
    figures,
    headline_index,
    render_html,
    render_markdown,
    save_plots,
)

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN_MD = DATA / "golden" / "scorecard_small.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE_MODEL = "<script>alert(1)</script>"
HOSTILE_LABEL = 'fgsm "q" <b>|x $\\frac{$'


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads((DATA / "scorecard_small.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def samples() -> dict:
    with np.load(DATA / "scorecard_small_samples.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _rename_attack(rec: dict, old: str, new: str) -> None:
    for a in rec["threat_model"]["attacks"]:
        if a["label"] == old:
            a["label"] = new
    for r in rec["results"]:
        r["attacks"] = {(new if k == old else k): v for k, v in r["attacks"].items()}
    rec["cost"]["attacks"] = {(new if k == old else k): v for k, v in rec["cost"]["attacks"].items()}


def hostile(record: dict, *, exhaustive: bool = True, complete: bool = True) -> dict:
    """The fixture with hostile strings, one failing and one warning check, optionally a cascade/incomplete run."""
    rec = copy.deepcopy(record)
    rec["model"]["name"] = HOSTILE_MODEL
    rec["data"]["name"] = "digits | <img src=x onerror=alert(2)>"
    _rename_attack(rec, "fgsm", HOSTILE_LABEL)
    rec["threat_model"]["exhaustive"] = exhaustive
    if not exhaustive:
        for r in rec["results"]:
            for a in r["attacks"].values():
                a.pop("robust_accuracy", None)
                a.pop("robust_accuracy_ci", None)
    checks = {c["id"]: c for c in rec["checks"]}
    checks["gradient_health"].update(status="fail", summary="40 % of samples have <zero> gradients & more",
                                     evidence={"zero_gradient_samples_ce": 12, "note": "</dd><script>x</script>"})
    checks["convergence"].update(status="warn", summary="more iterations still help | by 3 points")
    if not complete:
        rec["complete"] = False
        rec["incomplete_reason"] = "time budget of 1 s exhausted <b>"
        rec["results"][-1]["complete"] = False
    return rec


@pytest.fixture(scope="module")
def html_page(record, samples) -> str:
    return render_html(record, samples)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- Markdown -------------------------------------------------------------------------------------------
def test_markdown_matches_golden_file(record):
    text = render_markdown(record)
    if os.environ.get("AISEC_LAB_UPDATE_GOLDEN") == "1":
        GOLDEN_MD.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN_MD.write_text(text, encoding="utf-8", newline="\n")
    expected = GOLDEN_MD.read_text(encoding="utf-8")
    assert text == expected, ("Markdown output changed; if intended, rerun with AISEC_LAB_UPDATE_GOLDEN=1 "
                              "and review the diff of tests/data/golden/scorecard_small.md")


def test_markdown_is_a_pure_function_of_the_record(record):
    before = copy.deepcopy(record)
    assert render_markdown(record) == render_markdown(copy.deepcopy(record))
    assert record == before


def test_markdown_content(record):
    md = render_markdown(record)
    assert "**100.0%** (95% CI 94.0–100.0%)" in md
    assert "ε = 0.1 **58.3%** (95% CI 44.9–70.9%)" in md  # headline = middle ε
    assert "validity checks **PASS**" in md
    assert "| 0.1 (headline) | 58.3% | 44.9–70.9% | 63.3% | 58.3% | 61.7% |" in md
    assert "AML.T0043.000" in md and "AML.T0043.001" in md and "MEASURE 2.7" in md
    assert "b03c6ae79a12a57d5b1ad19916e99525e882cadd" in md and "2026-11-29T13:42:31+00:00" in md
    assert "INCOMPLETE" not in md


def test_markdown_escapes_hostile_strings_and_reports_failures(record):
    md = render_markdown(hostile(record, exhaustive=False, complete=False))
    assert "<script" not in md and "<img" not in md and "<b>" not in md and "<zero>" not in md
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in md or "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    # the table keeps its shape: every row has as many unescaped pipes as the header
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    counts = {len(re.findall(r"(?<!\\)\|", ln)) for ln in table}
    assert len(table) == 2 + len(record["results"]) and len(counts) == 1
    assert 'fgsm "q" &lt;b&gt;\\|x \\$\\\\frac{\\$ (broke first)' in md
    assert "broke 22 first" in md  # cascade mode: per-attack counts instead of accuracies
    assert "INCOMPLETE EVALUATION" in md and "**INCOMPLETE**" in md
    assert "validity checks **FAIL**" in md
    fail_line = next(ln for ln in md.splitlines() if "gradient\\_health" in ln and "FAIL" in ln)
    assert "&lt;zero&gt; gradients &amp; more" in fail_line
    assert md.index("**FAIL**") < md.index("**WARN**")


# -- HTML -----------------------------------------------------------------------------------------------
def test_html_escapes_every_hostile_string(record, samples):
    page = render_html(hostile(record, complete=False), samples=None, embed_plots=False)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert '"q" <b>' not in page and "fgsm &#34;q&#34; &lt;b&gt;|x" in page
    assert "&lt;/dd&gt;&lt;script&gt;x&lt;/script&gt;" in page
    assert "&lt;zero&gt; gradients &amp; more" in page
    assert "INCOMPLETE EVALUATION: time budget of 1 s exhausted &lt;b&gt;" in page
    assert 'class="card status-fail"' in page


def test_html_is_self_contained(html_page):
    low = html_page.lower()
    assert "<script" not in low and "<link" not in low and "<iframe" not in low
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", low)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", low) and "@import" not in low
    srcs = re.findall(r'<img src="([^"]+)"', html_page)
    assert len(srcs) == 4
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        w, h = _png_size(base64.b64decode(src.split(",", 1)[1]))
        assert w > 100 and h > 100


def test_html_shows_the_verdict(html_page):
    assert "<title>Robustness scorecard: digits_cnn (pytorch) on digits</title>" in html_page
    assert "100.0%" in html_page and "94.0–100.0%" in html_page
    assert "Worst-case robust accuracy at ε = 0.1" in html_page
    assert "58.3%" in html_page and "44.9–70.9%" in html_page
    assert 'class="card status-pass"' in html_page and ">PASS<" in html_page
    assert "INCOMPLETE" not in html_page
    assert "AML.T0043.000 (Craft Adversarial Data: White-Box Optimization)" in html_page
    assert "MEASURE 2.7" in html_page and "b03c6ae79a12a57d5b1ad19916e99525e882cadd" in html_page


def test_html_explains_checks_from_the_packaged_doc(html_page):
    # gradient_health's paragraph from evaluation/checks.md, with its code spans escaped text
    assert "<strong>What it tests.</strong> Input gradients of the cross-entropy" in html_page
    assert "black-box attacks (<code>square</code>, <code>hop_skip_jump</code>)" in html_page
    assert html_page.count("What this check tests and what to do") == 10
    assert "max_abs_logit_difference" in html_page  # compact evidence


def test_html_plot_options(record, samples):
    assert "<img" not in render_html(record, samples, embed_plots=False)
    assert len(re.findall(r"<img ", render_html(record, None))) == 2  # record-only plots without samples
    assert render_html(record, None, embed_plots=False) == render_html(copy.deepcopy(record), None,
                                                                        embed_plots=False)


# -- plots ----------------------------------------------------------------------------------------------
def test_figures_with_and_without_samples(record, samples):
    figs = figures(record, samples)
    assert list(figs) == ["robustness_curve", "perturbation_norms", "per_class", "gallery"]
    for key, fig in figs.items():
        assert fig.axes, key
        w, h = _png_size(base64.b64decode(figure_png_base64(fig)))
        assert w >= 300 and h >= 200, key
    curve = figs["robustness_curve"].axes[0]
    labels = [t.get_text() for t in curve.get_legend().get_texts()]
    assert {"fgsm", "pgd", "square", "worst case over attacks"} <= set(labels)
    assert len(figs["gallery"].axes) == 3 * 8  # clean / adversarial / perturbation × 8 broken samples
    assert list(figures(record, None)) == ["robustness_curve", "per_class"]


def test_gallery_handles_rgb_and_non_image_inputs(record, samples):
    rgb = dict(samples, x=np.repeat(samples["x"], 3, axis=1), x_adv=np.repeat(samples["x_adv"], 3, axis=2))
    fig = figures(record, rgb)["gallery"]
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 8, 3)
    flat = dict(samples, x=samples["x"].reshape(60, -1), x_adv=samples["x_adv"].reshape(3, 60, -1))
    assert len(figures(record, flat)["gallery"].axes) == 1  # a message, not a crash
    # hostile labels (with mathtext "$") in legends and titles still draw
    for fig in figures(hostile(record), samples).values():
        _png_size(base64.b64decode(figure_png_base64(fig)))
    assert figures(hostile(record, exhaustive=False, complete=False), samples)["robustness_curve"].axes


def test_save_plots_writes_pngs_atomically(record, samples, tmp_path):
    paths = save_plots(record, samples, tmp_path)
    assert [p.name for p in paths] == ["robustness_curve.png", "perturbation_norms.png", "per_class.png",
                                       "gallery.png"]
    assert sorted(os.listdir(tmp_path / "plots")) == sorted(p.name for p in paths)  # no temp files left
    for p in paths:
        assert p.parent == tmp_path / "plots"
        _png_size(p.read_bytes())


def test_headline_is_the_middle_positive_eps(record):
    assert headline_index(record) == 1
    two = copy.deepcopy(record)
    two["results"] = two["results"][:2]
    assert headline_index(two) == 1
    assert headline_index({"results": []}) is None


# -- headless Chromium ------------------------------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_renders_in_headless_chromium(tmp_path, record, samples):
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium/chromium-browser on PATH")
    page = tmp_path / "scorecard.html"
    page.write_text(render_html(hostile(record, complete=False), samples), encoding="utf-8")
    shot = tmp_path / "screenshot.png"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 90 s")
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln
               or "net::ERR" in ln]
    assert not console, "\n".join(console)
    assert proc.returncode == 0, proc.stderr[-2000:]
    w, h = _png_size(shot.read_bytes())
    assert (w, h) == (1200, 2000) and shot.stat().st_size > 20_000


def test_degenerate_records_render(record, samples):
    rec = copy.deepcopy(record)
    rec["checks"] = []
    rec["per_class"] = {}
    rec["skipped_attacks"] = [{"attack": "validity checks", "reason": "checks=False was passed"}]
    rec["threat_model"]["eps_display"][0] = "8/255"
    rec["results"][0]["eps_display"] = "8/255"
    rec["results"][2]["attacks"]["square"]["ran"] = False
    rec["provenance"]["git_commit"] = None
    md = render_markdown(rec)
    assert "No validity checks ran" in md and "not run" in md and "8/255 (0.05)" in md
    assert "Skipped: validity checks: checks=False was passed" in md and "git commit none" in md
    page = render_html(rec, None)
    assert "No validity checks ran" in page and "not run" in page
    assert len(figures(rec, samples)) == 4
