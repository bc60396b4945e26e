"""The ``aisec-lab`` command line. Thin: every command calls the library functions notebooks call."""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from collections.abc import Sequence

from ._version import __version__
from .errors import AisecLabError

log = logging.getLogger(__name__)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Clean accuracy of the reference models on the bundled test split (until the scorecard notebook lands)."""
    from . import zoo
    from .data import load_dataset

    ds = load_dataset(args.dataset, split="test", seed=args.seed)
    print(f"aisec-lab {__version__} demo: clean accuracy on {ds.name}/{ds.split} ({ds.n} samples, sha256 {ds.sha256[:12]})")
    rows = []
    for framework in args.frameworks:
        for name in args.models:
            target = zoo.target(name, framework, seed=args.seed)
            acc = target.accuracy(ds)
            rows.append({"model": name, "framework": framework, "clean_accuracy": acc, "n_params": target.n_params,
                         "weights_sha256": target.weights_sha256})
            print(f"  {name:<12} {framework:<11} clean accuracy {acc:.4f}  ({target.n_params:,} parameters)")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    """Versions of aisec-lab and of the frameworks it finds (without failing on a missing one)."""
    from importlib import metadata

    info = {"aisec-lab": __version__, "python": platform.python_version()}
    for dist in ("adversarial-robustness-toolbox", "numpy", "scipy", "scikit-learn", "torch", "tensorflow-cpu",
                 "tensorflow", "keras", "papermill", "ipywidgets"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    from . import zoo

    info["cache_dir"] = str(zoo.cache_dir())
    print(json.dumps(info, indent=2))
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    from . import zoo

    for name in zoo.list_models():
        print(f"{name:<12} {zoo.MODELS.describe(name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aisec-lab", description="Adversarial robustness testing toolkit.")
    parser.add_argument("--version", action="version", version=f"aisec-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train/load the reference models and print their clean accuracy")
    demo.add_argument("--models", nargs="+", default=["digits_cnn", "digits_mlp"])
    demo.add_argument("--frameworks", nargs="+", default=["pytorch", "tensorflow"], choices=["pytorch", "tensorflow"])
    demo.add_argument("--dataset", default="digits")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", action="store_true", help="also print the results as JSON")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="print versions and the cache directory")
    info.set_defaults(func=_cmd_info)

    zoo_p = sub.add_parser("zoo", help="list the reference models")
    zoo_p.set_defaults(func=_cmd_zoo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except AisecLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
