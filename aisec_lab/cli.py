"""The ``aisec-lab`` command line. Thin: every command calls the library functions notebooks call."""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

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
    from ._io import atomic_write_text
    from .data import load_dataset
    from .evaluation import evaluate
    from .notebooks import load_target

    ds = load_dataset(args.dataset, split=args.split, seed=args.data_seed)
    target = load_target(args.model, args.framework, ds)  # the same resolution as the notebooks
    from .notebooks import train_data_for

    sections = list(getattr(args, "sections", None) or [])
    sc = evaluate(target, ds, attacks=_parse_attacks(args.attacks), norm=args.norm, eps=args.eps,
                  n_samples=args.n_samples, seed=args.seed, exhaustive=args.exhaustive, checks=not args.no_checks,
                  state_dir=args.state_dir, time_budget_s=args.time_budget_s, progress=not args.no_progress,
                  sections=sections, train_data=train_data_for(args.dataset, sections))
    print(sc.summary())
    if args.out:
        path = sc.save(args.out)
        print(f"scorecard written to {path.parent} (scorecard.json, .html, .md, samples.npz, plots/)")
    if args.json:
        atomic_write_text(args.json, json.dumps(sc.to_dict(), indent=2, sort_keys=True))
        print(f"scorecard JSON written to {args.json}")
    return 0 if sc.complete else 3


def _cmd_train(args: argparse.Namespace) -> int:
    """Adversarially train a model with a recipe: the steps of notebook 02_adversarial_training, without a notebook."""
    from .data import load_dataset
    from .notebooks import check_output_dir, check_training_parameters, load_target, notebook_outputs

    spec = check_training_parameters(model=args.model, framework=args.framework, dataset=args.dataset,
                                     recipe=args.recipe, eps=args.eps, epochs=args.epochs, batch_size=args.batch_size,
                                     seed=args.seed, eval_attacks=args.eval_attacks, eval_eps=args.eval_eps,
                                     eval_n_samples=args.eval_n_samples)
    out = check_output_dir(args.out)
    train = load_dataset(args.dataset, split="train")
    test = load_dataset(args.dataset, split="test")
    target = load_target(args.model, args.framework, test)  # the same resolution as the notebooks
    result = spec.fit(target, train, test_data=test, checkpoint_dir=out / "ckpt", eval_attacks=args.eval_attacks,
                      eval_eps=args.eval_eps, eval_n_samples=args.eval_n_samples, progress=not args.no_progress)
    result.save(out)
    print(result.summary())
    print()
    shown = Path(args.out)
    for label, path in notebook_outputs("02_adversarial_training", shown):
        print(f"{label + ':':<22}{path}")
    return 0 if result.scorecard_after is None or result.scorecard_after.complete else 3


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


def _ns(**kwargs) -> argparse.Namespace:
    return argparse.Namespace(**kwargs)


def _lazy_click():
    import click

    return click


def build_cli():
    """The click command group (built lazily so ``import aisec_lab.cli`` stays cheap)."""
    click = _lazy_click()

    @click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.version_option(__version__, prog_name="aisec-lab")
    @click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
    def cli(verbose: int) -> None:
        """aisec-lab: adversarial robustness testing. Every command calls the same functions the notebooks call."""
        logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(levelname)s %(name)s: %(message)s")

    @cli.command("list")
    @click.argument("what", type=click.Choice(["attacks", "presets", "models", "checks", "notebooks", "datasets"]))
    @click.option("--norm", default=None, help="Only attacks supporting this norm (linf, l2, l1).")
    def list_cmd(what: str, norm: str | None) -> int:
        """List attacks, presets, reference models, validity checks, notebooks or data sets."""
        from . import attacks, zoo
        from .data import list_datasets
        from .evaluation.checks import CHECKS

        if what == "attacks":
            for name in attacks.list_attacks(norm):
                card = attacks.describe_attack(name)
                print(f"{name:<16} {card['knowledge']:<10} {','.join(card['norms']):<12} {card['summary']}")
        elif what == "presets":
            for name in attacks.list_presets():
                print(f"{name:<10} {attacks.PRESETS.describe(name)}")
        elif what == "models":
            for name in zoo.list_models():
                print(f"{name:<12} {zoo.MODELS.describe(name)}")
        elif what == "checks":
            for name in CHECKS.names():
                print(name)
        elif what == "notebooks":
            from .notebooks import list_notebooks

            for name in list_notebooks():
                print(name)
        else:
            for name in list_datasets():
                print(name)
        return 0

    @cli.command()
    @click.argument("name")
    def describe(name: str) -> int:
        """Describe an attack, a preset, a reference model or a notebook's parameters (JSON)."""
        from . import attacks, zoo

        if name in attacks.ATTACKS:
            card = attacks.describe_attack(name)
        elif name in attacks.PRESETS:
            card = {"preset": name, "description": attacks.PRESETS.describe(name),
                    "attacks": [s.label for s in attacks.PRESETS.get(name)("linf")]}
        elif name in zoo.MODELS:
            card = zoo.describe(name)
        else:
            from .notebooks import list_notebooks, notebook_parameters

            if name not in list_notebooks():
                attacks.ATTACKS.get(name)  # raises UnknownComponentError with did-you-mean
            card = {"notebook": name, "parameters": {k: {"type": str(p.type), "default": p.default, "help": p.help}
                                                     for k, p in notebook_parameters(name).items()}}
        print(json.dumps(card, indent=2, default=str))
        return 0

    def scorecard_options(fn):
        options = [
            click.option("--model", default="digits_cnn", show_default=True, help="Reference model name or model file."),
            click.option("--framework", type=click.Choice(["pytorch", "tensorflow"]), default="pytorch", show_default=True),
            click.option("--dataset", default="digits", show_default=True),
            click.option("--split", default="test", show_default=True),
            click.option("--data-seed", type=int, default=0, show_default=True),
            click.option("--attacks", "attacks_", multiple=True, default=("standard",), show_default=True,
                         help="A preset name, or attack names (comma-separated or repeated)."),
            click.option("--norm", default="linf", show_default=True),
            click.option("--eps", multiple=True, default=("0.05,0.1",), show_default=True,
                         help="ε in the model's input scale (comma-separated or repeated)."),
            click.option("--n-samples", type=int, default=None, help="Stratified sample size (default: all)."),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option("--sections", "sections_", multiple=True, default=(),
                         help="Further sections: certified, privacy, backdoor (comma-separated or repeated); "
                              "privacy and backdoor use the data set's train split."),
            click.option("--exhaustive", is_flag=True, help="Also run every attack on every sample."),
            click.option("--no-checks", is_flag=True, help="Skip the validity checks (recorded as skipped)."),
            click.option("--state-dir", default=None, help="Folder for resumable state."),
            click.option("--time-budget-s", type=float, default=None, help="Stop after this many seconds."),
            click.option("--no-progress", is_flag=True),
            click.option("--out", default=None, help="Save the scorecard files (json, html, md, plots) here."),
            click.option("--json", "json_", default=None, help="Also write the scorecard JSON to this file."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    def _split(values) -> list[str]:
        return [part.strip() for v in values for part in str(v).split(",") if part.strip()]

    def _scorecard(**kw) -> int:
        try:
            eps = [float(e) for e in _split(kw["eps"])]
        except ValueError:
            raise click.BadParameter(f"expected numbers, got {', '.join(kw['eps'])}", param_hint="--eps") from None
        return _cmd_evaluate(_ns(model=kw["model"], framework=kw["framework"], dataset=kw["dataset"], split=kw["split"],
                                 data_seed=kw["data_seed"], attacks=_split(kw["attacks_"]), norm=kw["norm"],
                                 eps=eps, n_samples=kw["n_samples"], seed=kw["seed"],
                                 exhaustive=kw["exhaustive"], no_checks=kw["no_checks"], state_dir=kw["state_dir"],
                                 time_budget_s=kw["time_budget_s"], no_progress=kw["no_progress"], out=kw["out"],
                                 json=kw["json_"], sections=_split(kw["sections_"])))

    @cli.command()
    @scorecard_options
    def scorecard(**kw) -> int:
        """Evaluate a model directly (no notebook) and print its scorecard. Exit 3 if the run is incomplete."""
        return _scorecard(**kw)

    @cli.command(hidden=True)
    @scorecard_options
    def evaluate(**kw) -> int:
        """Alias of `scorecard`."""
        return _scorecard(**kw)

    def _eval_n_samples(ctx, param, value):
        if value is None or str(value).strip().lower() in ("all", "none"):
            return None
        try:
            return int(value)
        except ValueError:
            raise click.BadParameter(f"expected a positive integer or 'all', got {value!r}") from None

    @cli.command()
    @click.option("--model", default="digits_cnn", show_default=True, help="Reference model name or model file.")
    @click.option("--framework", default="pytorch", show_default=True, help="pytorch or tensorflow.")
    @click.option("--dataset", default="digits", show_default=True,
                  help="Bundled data set: trains on its train split, scores on its test split.")
    @click.option("--recipe", default="pgd_at", show_default=True, help="pgd_at, trades or fast_at.")
    @click.option("--eps", type=float, default=0.1, show_default=True,
                  help="L-inf budget trained against, in the model's input scale.")
    @click.option("--epochs", type=int, default=10, show_default=True, help="Most epochs (early stopping may end sooner).")
    @click.option("--batch-size", type=int, default=64, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--eval-attacks", "eval_attacks", multiple=True, default=("standard",), show_default=True,
                  help="Attacks of the before/after scorecards: a preset, or attack names (comma-separated or repeated).")
    @click.option("--eval-eps", "eval_eps", multiple=True, default=(),
                  help="ε of the scorecards (comma-separated or repeated; default: --eps).")
    @click.option("--eval-n-samples", default="200", show_default=True, callback=_eval_n_samples,
                  help="Stratified test sample of the scorecards ('all': the whole test split).")
    @click.option("--no-progress", is_flag=True)
    @click.option("--out", default="runs/adversarial_training", show_default=True,
                  help="Folder for the model, recipe.yaml, history, scorecards and checkpoints (ckpt/).")
    def train(**kw) -> int:
        """Adversarially train a model with a recipe; save it with before/after scorecards. Exit 3 if incomplete.

        The same library calls as notebook 02_adversarial_training. Re-running the same command resumes from
        the checkpoints in OUT/ckpt.
        """
        try:
            eval_eps = [float(e) for e in _split(kw["eval_eps"])] or None
        except ValueError:
            raise click.BadParameter(f"expected numbers, got {', '.join(kw['eval_eps'])}",
                                     param_hint="--eval-eps") from None
        return _cmd_train(_ns(model=kw["model"], framework=kw["framework"], dataset=kw["dataset"], recipe=kw["recipe"],
                              eps=kw["eps"], epochs=kw["epochs"], batch_size=kw["batch_size"], seed=kw["seed"],
                              eval_attacks=_parse_attacks(_split(kw["eval_attacks"])), eval_eps=eval_eps,
                              eval_n_samples=kw["eval_n_samples"], no_progress=kw["no_progress"], out=kw["out"]))

    @cli.command()
    @click.argument("notebook")
    @click.option("-p", "--parameter", "parameters", multiple=True, type=(str, str), metavar="NAME VALUE",
                  help="A notebook parameter, parsed against its declared type (e.g. -p eps '[0.1]').")
    @click.option("--out", "out_dir", required=True, help="Output folder (the notebook's output_dir).")
    @click.option("--timeout-s", type=float, default=None, help="Per-cell timeout.")
    def run(notebook: str, parameters, out_dir: str, timeout_s: float | None) -> int:
        """Run a parameterised notebook with papermill; print where its outputs are."""
        from .notebooks import notebook_outputs, notebook_parameters, notebook_path, parse_cli_value, run_notebook

        specs = notebook_parameters(notebook)
        params = {}
        for name, text in parameters:
            if name not in specs:
                params[name] = text  # check_parameters inside run_notebook names it with did-you-mean
            else:
                params[name] = parse_cli_value(specs[name], text)
        sc = run_notebook(notebook, params, out_dir, timeout_s=timeout_s)
        print(f"executed notebook: {Path(out_dir) / (notebook_path(notebook).stem + '.ipynb')}")
        if sc is not None:
            print(sc.summary())
        for label, path in notebook_outputs(notebook, out_dir):
            print(f"{label}: {path}")
        return 0

    @cli.command()
    @click.argument("grid", type=click.Path(dir_okay=False))
    @click.option("--out", "out_dir", required=True, help="Folder for every job's outputs and the index.")
    @click.option("--workers", type=int, default=2, show_default=True, help="Local worker processes.")
    @click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786) instead of the local pool.")
    def batch(grid: str, out_dir: str, workers: int, scheduler: str | None) -> int:
        """Run a YAML grid of notebook jobs; finished jobs are skipped on re-run. Exit 1 if a job failed."""
        from .batch import load_grid, run_batch

        result = run_batch(load_grid(grid), out_dir, workers=workers, scheduler=scheduler)
        print(result.summary())
        return 1 if result.failed else 0

    @cli.command()
    @click.argument("path")
    @click.option("--format", "fmt", required=True, type=click.Choice(["html", "md", "model-index", "mct"]))
    @click.option("--out", default=None, help="Write to this file (atomically) instead of stdout.")
    def render(path: str, fmt: str, out: str | None) -> int:
        """Render a saved scorecard as HTML, Markdown, a Hugging Face model-index fragment or MCT JSON."""
        return _cmd_render(_ns(path=path, format=fmt, out=out))

    @cli.command()
    @click.argument("a")
    @click.argument("b")
    @click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
    def compare(a: str, b: str, as_json: bool) -> int:
        """Differences B - A between two scorecards on the same data and threat model (McNemar tests)."""
        return _cmd_compare(_ns(a=a, b=b, json=as_json))

    @cli.command()
    @click.argument("path")
    @click.option("--eps", type=float, default=None, help="The ε to check (default: every evaluated ε).")
    @click.option("--min-robust-accuracy", type=float, default=None, help="A fraction in [0, 1].")
    @click.option("--min-clean-accuracy", type=float, default=None, help="A fraction in [0, 1].")
    @click.option("--fail-on", type=click.Choice(["fail", "warn", "never"]), default="fail", show_default=True,
                  help="Check status at or above which the gate fails.")
    def gate(path, eps, min_robust_accuracy, min_clean_accuracy, fail_on) -> int:
        """Exit 0 when a scorecard meets every threshold (equality passes), 1 when not, 2 on bad input."""
        return _cmd_gate(_ns(path=path, eps=eps, min_robust_accuracy=min_robust_accuracy,
                             min_clean_accuracy=min_clean_accuracy, fail_on=fail_on))

    @cli.command()
    @click.option("--models", multiple=True, default=("digits_cnn", "digits_mlp"), show_default=True)
    @click.option("--frameworks", multiple=True, type=click.Choice(["pytorch", "tensorflow"]),
                  default=("pytorch", "tensorflow"), show_default=True)
    @click.option("--dataset", default="digits", show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Also print the accuracies as JSON.")
    @click.option("--no-evaluate", is_flag=True, help="Skip the standard scorecard of digits_cnn.")
    @click.option("--n-samples", type=int, default=200, show_default=True)
    @click.option("--out", default=None, help="Save the demo scorecard files here.")
    def demo(models, frameworks, dataset, seed, as_json, no_evaluate, n_samples, out) -> int:
        """Clean accuracy of the reference models, then a standard scorecard of digits_cnn."""
        return _cmd_demo(_ns(models=list(models), frameworks=list(frameworks), dataset=dataset, seed=seed,
                             json=as_json, evaluate=not no_evaluate, n_samples=n_samples, out=out))

    @cli.command()
    def info() -> int:
        """Versions of aisec-lab and the frameworks it finds, and the cache folder."""
        return _cmd_info(_ns())

    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aisec-lab`` console script; returns the exit code."""
    click = _lazy_click()
    cli = build_cli()
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="aisec-lab", standalone_mode=False)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except AisecLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(rv or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
