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
    if args.evaluate:
        from .evaluation import evaluate

        target = zoo.target("digits_cnn", "pytorch", seed=args.seed)
        sc = evaluate(target, ds, attacks="standard", norm="linf", eps=[0.05, 0.1], n_samples=args.n_samples,
                      seed=args.seed, progress=False)
        print()
        print(sc.summary())
        if args.out:
            path = sc.save(args.out)
            print(f"\nscorecard files written to {path.parent}/ (open scorecard.html)")
    return 0


def _parse_attacks(values: list[str]):
    from .attacks import PRESETS

    if len(values) == 1 and values[0] in PRESETS:
        return values[0]
    return values


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a reference model (or a model file) on a bundled data set and print the scorecard."""
    from pathlib import Path

    from . import zoo
    from ._io import atomic_write_text
    from .data import load_dataset
    from .evaluation import evaluate
    from .models import load_model, wrap_model

    ds = load_dataset(args.dataset, split=args.split, seed=args.data_seed)
    if args.model in zoo.list_models():
        target = zoo.target(args.model, args.framework, seed=args.seed)
    else:
        native = load_model(args.model, framework=args.framework)
        target = wrap_model(native, input_shape=ds.input_shape, nb_classes=ds.nb_classes,
                            clip_values=ds.clip_values or (0.0, 1.0), name=Path(args.model).stem)
    sc = evaluate(target, ds, attacks=_parse_attacks(args.attacks), norm=args.norm, eps=args.eps,
                  n_samples=args.n_samples, seed=args.seed, exhaustive=args.exhaustive, checks=not args.no_checks,
                  state_dir=args.state_dir, time_budget_s=args.time_budget_s, progress=not args.no_progress)
    print(sc.summary())
    if args.out:
        path = sc.save(args.out)
        print(f"scorecard written to {path.parent} (scorecard.json, .html, .md, samples.npz, plots/)")
    if args.json:
        atomic_write_text(args.json, json.dumps(sc.to_dict(), indent=2, sort_keys=True))
        print(f"scorecard JSON written to {args.json}")
    return 0 if sc.complete else 3


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


def _render_text(sc, fmt: str) -> str:
    """The scorecard in ``fmt``: html / md through the renderers, model-index / mct through the exports."""
    from .errors import MissingDependencyError

    what = {"html": "aisec_lab.scorecard.render.html", "md": "aisec_lab.scorecard.render.markdown",
            "model-index": "aisec_lab.export", "mct": "aisec_lab.export"}[fmt]
    try:
        if fmt == "html":
            from .scorecard.render.html import render_html

            return render_html(sc.to_dict(), sc.samples)
        if fmt == "md":
            from .scorecard.render.markdown import render_markdown

            return render_markdown(sc.to_dict())
        from . import export

        if fmt == "model-index":
            return export.model_index(sc)
        return json.dumps(export.model_card_toolkit(sc), indent=2, sort_keys=True)
    except MissingDependencyError:
        raise
    except ImportError as exc:
        raise MissingDependencyError(f"--format {fmt} needs {what}, which could not be imported", got=str(exc),
                                     fix="reinstall aisec-lab, or pick another --format") from exc


def _cmd_render(args: argparse.Namespace) -> int:
    """Render a saved scorecard as HTML, Markdown, a Hugging Face model-index fragment or MCT JSON."""
    from ._io import atomic_write_text
    from .scorecard import Scorecard

    sc = Scorecard.load(args.path)
    text = _render_text(sc, args.format)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"{args.format} written to {args.out}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    """Differences b - a between two scorecards on the same data and threat model, with McNemar tests."""
    from .scorecard import Scorecard
    from .scorecard.compare import compare

    result = compare(Scorecard.load(args.a), Scorecard.load(args.b))
    print(json.dumps(result.to_dict(), indent=2, sort_keys=True) if args.json else result.summary())
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    """One line on stdout; exit 0 when every threshold is met, 1 when one is not, 2 on bad input."""
    from .scorecard import Scorecard
    from .scorecard.compare import gate

    try:
        result = gate(Scorecard.load(args.path), eps=args.eps, min_robust_accuracy=args.min_robust_accuracy,
                      min_clean_accuracy=args.min_clean_accuracy, fail_on=args.fail_on)
    except AisecLabError as exc:
        _print_line("ERROR: " + str(exc))
        return 2
    except Exception as exc:  # a crash must not read as "threshold not met" (exit 1)
        log.exception("gate crashed")
        _print_line(f"ERROR: unexpected {type(exc).__name__}: {exc}")
        return 2
    _print_line(result.reason)
    return 0 if result.ok else 1


def _print_line(text: str) -> None:
    """Print ``text`` as exactly one line, even on a stdout that cannot encode ε."""
    line = " ".join(str(text).split())
    try:
        print(line)
    except UnicodeEncodeError:
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        print(line.encode(encoding, errors="backslashreplace").decode(encoding))


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
    demo.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                      help="skip the robustness scorecard of digits_cnn (pytorch) after the accuracies")
    demo.add_argument("--n-samples", type=int, default=200, help="samples in the demo scorecard")
    demo.add_argument("--out", default=None, help="save the demo scorecard files into this folder")
    demo.set_defaults(func=_cmd_demo)

    ev = sub.add_parser("evaluate", help="attack a model over an eps sweep and print its scorecard")
    ev.add_argument("--model", default="digits_cnn", help="reference model name or model file path")
    ev.add_argument("--framework", default="pytorch", choices=["pytorch", "tensorflow"])
    ev.add_argument("--dataset", default="digits")
    ev.add_argument("--split", default="test")
    ev.add_argument("--data-seed", type=int, default=0)
    ev.add_argument("--attacks", nargs="+", default=["standard"], help="a preset name or attack names")
    ev.add_argument("--norm", default="linf")
    ev.add_argument("--eps", nargs="+", type=float, default=[0.05, 0.1])
    ev.add_argument("--n-samples", type=int, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--exhaustive", action="store_true")
    ev.add_argument("--no-checks", action="store_true")
    ev.add_argument("--state-dir", default=None)
    ev.add_argument("--time-budget-s", type=float, default=None)
    ev.add_argument("--no-progress", action="store_true")
    ev.add_argument("--out", default=None, help="save the scorecard files (json, html, md, plots) into this folder")
    ev.add_argument("--json", default=None, help="write the scorecard JSON to this file")
    ev.set_defaults(func=_cmd_evaluate)

    info = sub.add_parser("info", help="print versions and the cache directory")
    info.set_defaults(func=_cmd_info)

    zoo_p = sub.add_parser("zoo", help="list the reference models")
    zoo_p.set_defaults(func=_cmd_zoo)

    render = sub.add_parser("render", help="render a saved scorecard (HTML, Markdown, model-index YAML, MCT JSON)")
    render.add_argument("path", help="scorecard.json or the directory holding it")
    render.add_argument("--format", required=True, choices=["html", "md", "model-index", "mct"])
    render.add_argument("--out", default=None, help="write to this file (atomically) instead of stdout")
    render.set_defaults(func=_cmd_render)

    cmp_p = sub.add_parser("compare", help="compare two scorecards (differences B - A, paired McNemar tests)")
    cmp_p.add_argument("a", help="scorecard A (JSON file or its directory)")
    cmp_p.add_argument("b", help="scorecard B (JSON file or its directory)")
    cmp_p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp_p.set_defaults(func=_cmd_compare)

    gate_p = sub.add_parser("gate", help="exit 0 when a scorecard meets every threshold, 1 when not, 2 on bad input")
    gate_p.add_argument("path", help="scorecard.json or the directory holding it")
    gate_p.add_argument("--eps", type=float, default=None,
                        help="the ε the robust-accuracy threshold applies at (default: every evaluated ε)")
    gate_p.add_argument("--min-robust-accuracy", type=float, default=None, help="a fraction in [0, 1]")
    gate_p.add_argument("--min-clean-accuracy", type=float, default=None, help="a fraction in [0, 1]")
    gate_p.add_argument("--fail-on", default="fail", choices=["fail", "warn", "never"],
                        help="check severity that fails the gate (default: fail)")
    gate_p.set_defaults(func=_cmd_gate)
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
