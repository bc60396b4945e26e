from __future__ import annotations

import pytest

import aisec_lab as al
from aisec_lab.errors import format_message
from aisec_lab.registry import Registry


def test_error_tree_derives_from_builtins():
    assert issubclass(al.ConfigError, ValueError)
    assert issubclass(al.DataError, al.ConfigError)
    assert issubclass(al.UnsafeFileError, al.ConfigError)
    assert issubclass(al.IncompatibleModelError, TypeError)
    assert issubclass(al.UnknownComponentError, KeyError)
    assert issubclass(al.MissingDependencyError, ImportError)
    assert issubclass(al.NotebookExecutionError, RuntimeError)
    for cls in (al.ConfigError, al.IncompatibleModelError, al.UnknownComponentError, al.MissingDependencyError):
        assert issubclass(cls, al.AisecLabError)


def test_message_says_what_got_and_fix():
    msg = format_message("eps must be positive", got=-0.1, fix="pass eps=0.1")
    assert msg == "eps must be positive; got -0.1. Fix: pass eps=0.1"
    exc = al.UnknownComponentError("unknown attack 'pdg'", fix="did you mean 'pgd'?")
    assert str(exc) == "unknown attack 'pdg'. Fix: did you mean 'pgd'?"  # no KeyError quoting


def test_registry_did_you_mean_and_listing():
    reg: Registry = Registry("attack")
    reg.register("pgd", object(), description="projected gradient descent")

    @reg.register("fgsm")
    def fgsm():
        """fast gradient sign method"""

    assert reg.names() == ["fgsm", "pgd"]
    assert reg.describe("fgsm") == "fast gradient sign method"
    with pytest.raises(al.UnknownComponentError) as info:
        reg.get("pdg")
    assert "did you mean 'pgd'?" in str(info.value)
    assert "available: fgsm, pgd" in str(info.value)
    with pytest.raises(al.UnknownComponentError, match="did you mean 'pgd'"):
        reg.get("PGD")


def test_registry_refuses_duplicates_and_bad_names():
    reg: Registry = Registry("check")
    reg.register("a", 1)
    with pytest.raises(al.ConfigError, match="already registered"):
        reg.register("a", 2)
    reg.register("a", 2, overwrite=True)
    assert reg.get("a") == 2
    with pytest.raises(al.ConfigError, match="non-empty string"):
        reg.register(" a ", 3)
    with pytest.raises(al.ConfigError, match="looked up by its name"):
        reg.get(3)


def test_registry_loads_entry_point_plugins(monkeypatch):
    class FakeEntryPoint:
        name = "plugin_attack"
        value = "somepkg:attack"

        def load(self):
            return "the component"

    import importlib.metadata as md

    monkeypatch.setattr(md, "entry_points", lambda group=None: [FakeEntryPoint()] if group == "x.attacks" else [])
    reg: Registry = Registry("attack", entry_point_group="x.attacks")
    assert reg.get("plugin_attack") == "the component"
    assert "plugin_attack" in reg.names()


def test_zoo_lists_and_suggests():
    assert set(al.zoo.list_models()) >= {"digits_cnn", "digits_mlp"}
    with pytest.raises(al.UnknownComponentError, match="did you mean 'digits_cnn'"):
        al.zoo.load("digits_cn")
    with pytest.raises(al.ConfigError, match="unknown framework"):
        al.zoo.load("digits_cnn", framework="jax")
