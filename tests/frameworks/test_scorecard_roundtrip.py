"""evaluate -> save -> load: identical canonical JSON, schema-valid files, equal per-sample arrays.

The one scorecard test that runs a model. The real Markdown renderer runs when it is installed (it
is cheap); HTML and plots are stubbed to keep this fast (they have their own tests).
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.scorecard import io as scio

pytest.importorskip("torch")

pytestmark = pytest.mark.pytorch


@pytest.fixture
def fast_html_and_plots(monkeypatch):
    """Replace render_html and save_plots only (the real markdown module may import the plots module)."""
    import importlib

    fakes = {"html": ("render_html", lambda record, samples=None, *, embed_plots=True: "<html></html>"),
             "plots": ("save_plots", lambda record, samples, out_dir: [])}
    for name, (attr, fake) in fakes.items():
        modname = f"aisec_lab.scorecard.render.{name}"
        try:
            module = importlib.import_module(modname)
        except ImportError:
            module = types.ModuleType(modname)
            monkeypatch.setitem(sys.modules, modname, module)
        monkeypatch.setattr(module, attr, fake, raising=False)


def test_evaluate_save_load_round_trip(tmp_path, fast_html_and_plots):
    from jsonschema import Draft202012Validator

    sc = al.evaluate(al.zoo.target("digits_cnn", "pytorch"), al.load_dataset("digits"), attacks=["fgsm", "pgd"],
                     eps=[0.05, 0.1], n_samples=40, progress=False)
    canonical = json.dumps(sc.to_dict(), indent=2, sort_keys=True)  # no NumPy values, no NaN: plain JSON
    path = sc.save(tmp_path / "run")
    assert path.read_text(encoding="utf-8") == canonical
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["schema_version"] == al.scorecard.SCHEMA_VERSION == "1.2.0"
    Draft202012Validator(scio.load_schema()).validate(on_disk)
    assert not list(Draft202012Validator(scio.load_schema()).iter_errors(on_disk))

    loaded = al.Scorecard.load(tmp_path / "run")
    assert json.dumps(loaded.to_dict(), indent=2, sort_keys=True) == canonical
    assert loaded.samples.keys() == sc.samples.keys()
    assert loaded.samples["index_sha256"] == sc.samples["index_sha256"] == sc.data["sha256"]
    for key, arr in sc.samples.items():
        if key == "index_sha256":
            continue
        arr = np.asarray(arr)
        got = loaded.samples[key]
        assert got.dtype == arr.dtype and got.shape == arr.shape, key
        assert np.array_equal(got, arr, equal_nan=arr.dtype.kind == "f"), key
    assert loaded.robust_accuracy(0.1) == sc.robust_accuracy(0.1)
    assert loaded.status == sc.status and [c.id for c in loaded.checks] == [c.id for c in sc.checks]

    try:
        from aisec_lab.scorecard.render.markdown import render_markdown
    except ImportError:
        return
    md = (tmp_path / "run" / "scorecard.md").read_text(encoding="utf-8")
    assert md == render_markdown(loaded.to_dict())  # the saved Markdown is what rendering the file gives
