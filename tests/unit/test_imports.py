"""`import aisec_lab` stays light; a missing framework is a clear MissingDependencyError."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_import_does_not_load_frameworks_or_art():
    proc = _run("""
        import sys, aisec_lab
        heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'keras', 'art', 'mlflow', 'sklearn'})
        print(','.join(heavy))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize("module,framework,extra", [("torch", "pytorch", "torch"),
                                                     ("tensorflow", "tensorflow", "tensorflow")])
def test_missing_framework_names_the_extra(module, framework, extra):
    proc = _run(f"""
        import sys
        sys.modules[{module!r}] = None   # makes `import {module}` raise ImportError
        import aisec_lab as al
        try:
            al.zoo.load("digits_mlp", framework={framework!r})
        except al.MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print("MSG:", exc)
        else:
            raise SystemExit("no error raised")
    """)
    assert proc.returncode == 0, proc.stderr
    assert f"pip install 'aisec-lab[{extra}]'" in proc.stdout


def test_missing_torch_when_loading_a_torch_file(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    proc = _run(f"""
        import sys
        sys.modules['torch'] = None
        import aisec_lab as al
        try:
            al.load_model({str(path)!r})
        except al.MissingDependencyError as exc:
            print("MSG:", exc)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "aisec-lab[torch]" in proc.stdout
