"""Shared fixtures. One trained reference model per framework and architecture per test run.

HOME and the aisec-lab cache point into a temporary folder before anything imports ART or Keras
(both write dot-folders into HOME), so a test run never litters the user's home or reuses a stale
cache: the reference models are trained once per run (seconds) and shared by every test.
"""

from __future__ import annotations

import os
import tempfile

_RUN_DIR = tempfile.mkdtemp(prefix="aisec-lab-tests-")
os.environ["HOME"] = os.path.join(_RUN_DIR, "home")
os.makedirs(os.environ["HOME"], exist_ok=True)
os.environ.setdefault("AISEC_LAB_CACHE", os.path.join(_RUN_DIR, "cache"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
# a busy 2-core machine makes spinning OpenMP threads crawl (measured: 60-150x slower torch calls)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

import aisec_lab as al  # noqa: E402

FRAMEWORKS = ["pytorch", "tensorflow"]


@pytest.fixture(scope="session")
def run_dir() -> str:
    return _RUN_DIR


@pytest.fixture(scope="session")
def digits_test():
    return al.load_dataset("digits", split="test")


@pytest.fixture(scope="session")
def digits_train():
    return al.load_dataset("digits", split="train")


@pytest.fixture(scope="session")
def zoo_models():
    """Lazily trained native reference models, keyed by (name, framework); trained once per run."""
    cache: dict = {}

    def get(name: str, framework: str):
        key = (name, framework)
        if key not in cache:
            cache[key] = al.zoo.load(name, framework)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def zoo_targets(zoo_models, digits_test):
    cache: dict = {}

    def get(name: str, framework: str):
        key = (name, framework)
        if key not in cache:
            cache[key] = al.wrap_model(zoo_models(name, framework), input_shape=digits_test.input_shape,
                                       nb_classes=10, clip_values=(0.0, 1.0), name=f"{name}-{framework}")
        return cache[key]

    return get


@pytest.fixture(params=FRAMEWORKS)
def framework(request) -> str:
    return request.param
