"""Parameterised notebooks: discovery, strict parameters, and papermill execution with clear errors.

The notebooks in ``notebooks/`` ship inside the package, so a name such as ``"01_scorecard"``
resolves also when aisec-lab is installed from a wheel::

    >>> sc = aisec_lab.notebooks.run_notebook("01_scorecard", {"eps": [0.1]}, "runs/x")   # doctest: +SKIP

A notebook's parameters are declared in its cell tagged ``parameters``, one per line, as
``name: type = literal  # help``. :func:`run_notebook` checks the given values against those
declarations *before* a kernel starts (papermill itself only warns about unknown names and never
checks types), runs the notebook with papermill, and turns a failing cell into a
:class:`~aisec_lab.errors.NotebookExecutionError` that names the cell and the original error.

The notebooks stay thin (principle 6: notebooks orchestrate, the library computes): the few helpers
they call that belong to no other module live here (:func:`load_target`, :func:`plots`,
:func:`comparison_table`, :func:`save_comparison`).

Run a notebook from the shell with ``python -m aisec_lab.notebooks NOTEBOOK OUT_DIR [-p NAME VALUE]...``.

Importing this module is light: papermill, nbformat and the frameworks are imported when a call needs them.
"""

from __future__ import annotations

import ast
import difflib
import html
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._io import atomic_write_bytes, atomic_write_text
from .errors import AisecLabError, ConfigError, NotebookExecutionError, UnknownComponentError

__all__ = [
    "ParamSpec",
    "list_notebooks",
    "notebook_path",
    "notebook_parameters",
    "check_parameters",
    "parse_cli_value",
    "run_notebook",
    "load_target",
    "plots",
    "comparison_table",
    "save_comparison",
    "check_training_parameters",
    "check_output_dir",
    "notebook_outputs",
    "NOTEBOOK_DIR",
]

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
#: the packaged notebooks (in a source checkout a link to the repository's ``notebooks/``)
NOTEBOOK_DIR = _HERE / "_notebooks"
_NAME_RE = re.compile(r"^\d\d_[A-Za-z0-9_]+$")
#: arguments given to every kernel: no start-up and shut-down log lines ("running over TCP without encryption",
#: "KeyboardInterrupt caught in kernel") on the terminal; errors in cells still reach the executed notebook
_KERNEL_ARGS = ("--IPKernelApp.log_level=CRITICAL",)


# -- discovery ---------------------------------------------------------------------------------------------
def _notebook_dir() -> Path:
    if NOTEBOOK_DIR.is_dir():
        return NOTEBOOK_DIR
    checkout = _HERE.parent / "notebooks"  # a checkout where the package link did not survive (Windows)
    return checkout if checkout.is_dir() else NOTEBOOK_DIR


def list_notebooks() -> list[str]:
    """Names of the packaged notebooks (``"01_scorecard"``, ...), in order."""
    folder = _notebook_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.ipynb") if _NAME_RE.match(p.stem))


def notebook_path(name_or_path: str | os.PathLike) -> Path:
    """The file of a packaged notebook given by name (``"01_scorecard"``, ``"01_scorecard.ipynb"`` or
    ``"scorecard"``), or of a notebook given by path."""
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ConfigError("a notebook is given by name or path", got=name_or_path,
                          fix=f"use one of: {', '.join(list_notebooks())}, or a path to an .ipynb file")
    text = name_or_path.strip()
    candidate = Path(text).expanduser()
    looks_like_path = os.sep in text or "/" in text or (os.altsep and os.altsep in text)
    if candidate.is_file() and (looks_like_path or candidate.suffix == ".ipynb"):
        return candidate
    if looks_like_path:
        if candidate.is_dir():
            raise ConfigError("a notebook path must name an .ipynb file, not a folder", got=text,
                              fix="give the notebook file, e.g. notebooks/01_scorecard.ipynb")
        raise ConfigError("no such notebook file", got=text,
                          fix=f"check the path, or give a packaged notebook by name: {', '.join(list_notebooks())}")
    names = list_notebooks()
    stem = text[:-6] if text.endswith(".ipynb") else text
    if stem in names:
        return _notebook_dir() / f"{stem}.ipynb"
    short = [n for n in names if n[3:] == stem]  # "scorecard" -> "01_scorecard"
    if len(short) == 1:
        return _notebook_dir() / f"{short[0]}.ipynb"
    close = difflib.get_close_matches(stem, names, n=1, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(stem, [n[3:] for n in names], n=1, cutoff=0.5)
        close = [n for n in names if close and n[3:] == close[0]][:1]
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UnknownComponentError(f"unknown notebook {stem!r}",
                                fix=f"{hint}available: {', '.join(names) or '(none packaged)'}; "
                                    f"or give a path to an .ipynb file")


def _name(path: Path) -> str:
    return path.stem


def _read_notebook_json(path: Path) -> dict:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read notebook {path}", got=f"{type(exc).__name__}: {exc}",
                          fix="give a valid .ipynb file") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ConfigError(f"{path} is not a Jupyter notebook", got="JSON without a 'cells' list",
                          fix="give a valid .ipynb file")
    return nb


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


# -- parameter types ---------------------------------------------------------------------------------------
# A type is a nested tuple: ("int",), ("float",), ("str",), ("bool",), ("none",), ("any",),
# ("list", item_type_or_None), ("dict", (key_type, value_type) or None), ("union", (t1, t2, ...)).
_SCALARS = {"int": ("int",), "float": ("float",), "str": ("str",), "bool": ("bool",), "None": ("none",),
            "Any": ("any",), "object": ("any",)}
_CONTAINERS = {"list": "list", "List": "list", "tuple": "list", "Tuple": "list", "Sequence": "list",
               "dict": "dict", "Dict": "dict", "Mapping": "dict"}


def _parse_type(annotation: str, where: str) -> tuple:
    def bad(detail: str) -> ConfigError:
        return ConfigError(f"unsupported parameter type in {where}", got=f"{annotation!r} ({detail})",
                           fix="use int, float, str, bool, list, dict, list[float], list[str], "
                               "'Optional[int]', 'Union[str, list[str]]' (or X | Y)")

    def conv(node: ast.AST) -> tuple:
        if isinstance(node, ast.Constant):
            if node.value is None:
                return ("none",)
            if isinstance(node.value, str):  # a quoted annotation: "Optional[int]"
                try:
                    return conv(ast.parse(node.value, mode="eval").body)
                except SyntaxError:
                    raise bad("not a type expression") from None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "typing":
            node = ast.Name(id=node.attr)
        if isinstance(node, ast.Name):
            if node.id in _SCALARS:
                return _SCALARS[node.id]
            if node.id in _CONTAINERS:
                return (_CONTAINERS[node.id], None)
            raise bad(f"unknown type {node.id!r}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return _union(conv(node.left), conv(node.right))
        if isinstance(node, ast.Subscript):
            base = node.value
            if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "typing":
                base = ast.Name(id=base.attr)
            if not isinstance(base, ast.Name):
                raise bad("unsupported generic")
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if base.id == "Optional" and len(args) == 1:
                return _union(conv(args[0]), ("none",))
            if base.id == "Union":
                return _union(*(conv(a) for a in args))
            kind = _CONTAINERS.get(base.id)
            if kind == "list":
                if base.id in ("tuple", "Tuple"):
                    items = [conv(a) for a in args if not (isinstance(a, ast.Constant) and a.value is Ellipsis)]
                    return ("list", _union(*items) if items else None)
                if len(args) != 1:
                    raise bad("a list takes one item type")
                return ("list", conv(args[0]))
            if kind == "dict":
                if len(args) != 2:
                    raise bad("a dict takes a key and a value type")
                return ("dict", (conv(args[0]), conv(args[1])))
            raise bad(f"unknown generic {base.id!r}")
        raise bad("not a type expression")

    try:
        tree = ast.parse(annotation.strip(), mode="eval")
    except SyntaxError:
        raise bad("not a type expression") from None
    return conv(tree.body)


def _union(*types: tuple) -> tuple:
    flat: list[tuple] = []
    for t in types:
        for member in (t[1] if t[0] == "union" else (t,)):
            if member not in flat:
                flat.append(member)
    return flat[0] if len(flat) == 1 else ("union", tuple(flat))


def _type_text(t: tuple) -> str:
    kind = t[0]
    if kind == "none":
        return "None"
    if kind == "union":
        return " | ".join(_type_text(m) for m in t[1])
    if kind == "list":
        return "list" if t[1] is None else f"list[{_type_text(t[1])}]"
    if kind == "dict":
        return "dict" if t[1] is None else f"dict[{_type_text(t[1][0])}, {_type_text(t[1][1])}]"
    return kind


class _Mismatch(Exception):
    pass


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_literal(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int, float, bool)) and _is_literal(v) for k, v in value.items())
    return False


def _conform(value: Any, t: tuple) -> Any:
    """``value`` converted to type ``t`` (int -> float, tuple -> list), or :class:`_Mismatch`."""
    kind = t[0]
    if kind == "any":
        if not _is_literal(value):
            raise _Mismatch
        return list(value) if isinstance(value, tuple) else value
    if kind == "none":
        if value is None:
            return None
        raise _Mismatch
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if _is_numpy_integer(value):
            return int(value)
        raise _Mismatch
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if _is_numpy_number(value):
            return float(value)
        raise _Mismatch
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise _Mismatch
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return [_conform(v, t[1] or ("any",)) for v in value]
    if kind == "dict":
        if not isinstance(value, dict):
            raise _Mismatch
        kt, vt = t[1] if t[1] is not None else (("any",), ("any",))
        return {_conform(k, kt): _conform(v, vt) for k, v in value.items()}
    if kind == "union":
        for member in t[1]:
            try:
                return _conform(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    raise _Mismatch  # pragma: no cover - every kind is handled above


def _is_numpy_integer(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.integer)


def _is_numpy_number(value: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, (np.integer, np.floating))


def _example(t: tuple) -> str:
    kind = t[0]
    if kind == "union":
        return _example(next((m for m in t[1] if m[0] != "none"), t[1][0]))
    if kind == "list":
        return "[" + (_example(t[1]) if t[1] is not None else "0.1") + "]"
    return {"int": "10", "float": "0.1", "str": "'text'", "bool": "True", "none": "None",
            "dict": "{'key': 1}"}.get(kind, "a literal")


# -- parameters cell ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    """One declared notebook parameter: ``name: type = default  # help``."""

    name: str
    type: str  # the annotation as written in the notebook ("list[float]", "Optional[int]", ...)
    default: Any
    help: str = ""

    @property
    def kind(self) -> tuple:
        """The parsed type (internal representation)."""
        return _parse_type(self.type, f"parameter {self.name!r}") if self.type else ("any",)

    def validate(self, value: Any) -> Any:
        """``value`` checked against (and converted to) the declared type; :class:`ConfigError` if it does not fit."""
        t = self.kind
        try:
            return _conform(value, t)
        except _Mismatch:
            pass
        fix = f"pass {_type_text(t)}, e.g. {self.name}={_example(t)}"
        if isinstance(value, str) and _accepts(t, "list"):
            fix += f" (on the command line: -p {self.name} {_shell(_example(t))})"
        raise ConfigError(f"parameter {self.name!r} must be of type {self.type}",
                          got=f"{type(value).__name__} {_short(value)}", fix=fix)


def _shell(text: str) -> str:
    return text if re.fullmatch(r"[\w.+-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def _accepts(t: tuple, kind: str) -> bool:
    return t[0] == kind or (t[0] == "union" and any(m[0] == kind for m in t[1]))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parameters_cell(nb: dict, path: Path) -> str | None:
    for cell in nb["cells"]:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and "parameters" in tags:
            return _source(cell)
    return None


def _comments_by_line(src: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def notebook_parameters(name_or_path: str | os.PathLike) -> dict[str, ParamSpec]:
    """The parameters declared in the notebook's cell tagged ``parameters``, in order.

    Each line reads ``name: type = literal  # help``; the default must be a Python literal.
    A notebook without such a cell takes no parameters (an empty dict).
    """
    path = notebook_path(name_or_path)
    nb = _read_notebook_json(path)
    src = _parameters_cell(nb, path)
    if src is None:
        return {}
    where = f"the parameters cell of {path.name}"
    try:
        tree = ast.parse(src)
    except SyntaxError as exc:
        raise ConfigError(f"{where} is not valid Python", got=f"line {exc.lineno}: {exc.msg}",
                          fix="write one 'name: type = literal  # help' per line") from None
    comments = _comments_by_line(src)
    specs: dict[str, ParamSpec] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            name, value_node = stmt.target.id, stmt.value
            annotation = ast.get_source_segment(src, stmt.annotation) or ""
            if isinstance(stmt.annotation, ast.Constant) and isinstance(stmt.annotation.value, str):
                annotation = stmt.annotation.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, value_node, annotation = stmt.targets[0].id, stmt.value, ""
        else:
            line = src.splitlines()[stmt.lineno - 1].strip()
            raise ConfigError(f"{where} may hold only 'name: type = literal' lines", got=f"line {stmt.lineno}: {line}",
                              fix="move computations into the library or a later cell")
        try:
            default = ast.literal_eval(value_node)
        except ValueError:
            raise ConfigError(f"{where}: the default of {name!r} is not a literal",
                              got=ast.get_source_segment(src, value_node),
                              fix="use a literal (number, string, list, dict, True/False/None)") from None
        if not annotation:
            annotation = "Any" if default is None else _type_text(_infer(default))
        spec = ParamSpec(name=name, type=annotation.strip(), default=default,
                         help=comments.get(stmt.end_lineno or stmt.lineno, ""))
        spec.kind  # noqa: B018 - raises ConfigError on an unsupported annotation
        specs[name] = spec
    return specs


def _infer(value: Any) -> tuple:
    if isinstance(value, bool):
        return ("bool",)
    if isinstance(value, int):
        return ("int",)
    if isinstance(value, float):
        return ("float",)
    if isinstance(value, str):
        return ("str",)
    if isinstance(value, (list, tuple)):
        return ("list", None)
    if isinstance(value, dict):
        return ("dict", None)
    return ("any",)


def check_parameters(name_or_path: str | os.PathLike, params: dict | None) -> dict:
    """Check ``params`` against the notebook's declared parameters; return them converted to the declared types.

    Unknown names (papermill only warns about them) and values of the wrong type raise
    :class:`~aisec_lab.errors.ConfigError` -- before any kernel starts.
    """
    path = notebook_path(name_or_path)
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ConfigError("notebook parameters must be a dict of name -> value", got=type(params).__name__,
                          fix="e.g. {'eps': [0.1], 'n_samples': 50}")
    specs = notebook_parameters(path)
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise ConfigError("notebook parameter names must be strings", got=key, fix=f"use one of: {', '.join(specs)}")
        if key not in specs:
            close = difflib.get_close_matches(key, list(specs), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"unknown parameter {key!r} for notebook {_name(path)}",
                              fix=f"{hint}its parameters are: {', '.join(specs) or '(none)'}")
        out[key] = specs[key].validate(value)
    contract = _CONTRACTS.get(_name(path))
    if contract is not None and contract.check is not None and contract.needs <= set(specs):
        # value checks (names with did-you-mean, ranges, eps scale) on the values the kernel would see
        contract.check({**{k: s.default for k, s in specs.items()}, **out})
    return out


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~"}


def parse_cli_value(spec: ParamSpec, text: str) -> Any:
    """Turn a command-line string into a value of the parameter's declared type.

    ``'[0.1, 0.2]'`` -> ``[0.1, 0.2]`` (Python literal syntax), ``'50'`` -> ``50``, ``'true'`` -> ``True``,
    ``'none'`` -> ``None`` where allowed; a string parameter keeps the text as given.
    """
    if not isinstance(text, str):
        return spec.validate(text)
    t = spec.kind
    members = t[1] if t[0] == "union" else (t,)
    raw = text.strip()
    low = raw.lower()
    if low in _NONE and any(m[0] == "none" for m in members):
        return None
    if any(m[0] == "bool" for m in members) and (low in _TRUE or low in _FALSE):
        if not any(m[0] in ("int", "float") for m in members) or low in ("true", "false", "yes", "no", "on", "off"):
            return low in _TRUE
    try:
        literal = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        literal = _NOT_A_LITERAL
    if literal is not _NOT_A_LITERAL:
        try:
            return _conform(literal, t)
        except _Mismatch:
            pass
    if any(m[0] in ("str", "any") for m in members):
        return text
    example = _example(t)
    raise ConfigError(f"parameter {spec.name!r} must be of type {spec.type}", got=repr(text),
                      fix=f"write a Python literal, e.g. -p {spec.name} {_shell(example)}")


_NOT_A_LITERAL = object()


# -- running -----------------------------------------------------------------------------------------------
def _kernel_arguments() -> list[str]:
    args = list(_KERNEL_ARGS)
    backend = os.environ.get("MPLBACKEND", "")
    if backend and "inline" not in backend.lower():
        # an exported MPLBACKEND (Agg in CI) would make pyplot figures vanish from the executed notebook
        args.append("--IPKernelApp.matplotlib=inline")
    return args


def _stat_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _first_line(source: str) -> str:
    for line in str(source).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 80 else line[:77] + "..."
    return "(empty cell)"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _keep_executed(tmp_nb: Path, executed: Path, final_name: str) -> bool:
    """Copy papermill's output notebook to ``executed`` atomically (patching the recorded output path)."""
    try:
        raw = tmp_nb.read_bytes()
    except OSError:
        return False
    try:
        nb = json.loads(raw)
        meta = nb.setdefault("metadata", {}).setdefault("papermill", {})
        if isinstance(meta, dict):
            meta["output_path"] = final_name
        raw = (json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    except (ValueError, AttributeError):
        pass  # keep the bytes as papermill wrote them
    atomic_write_bytes(executed, raw)
    return True


def check_output_dir(out_dir: Any) -> Path:
    """``out_dir`` as an absolute path, refused (:class:`~aisec_lab.errors.ConfigError`) when it or a parent
    is an existing file; nothing is created."""
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise ConfigError("out_dir must be a folder path", got=out_dir, fix="e.g. out_dir='runs/x'")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError("the output directory is an existing file", got=str(out),
                          fix="pass a folder path (it is created when missing), or move the file away")
    for parent in out.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError("the output directory lies below a file", got=str(parent),
                              fix="pass a folder path whose parents are folders")
    return out.absolute()


def run_notebook(
    name_or_path: str | os.PathLike,
    params: dict | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    timeout_s: float | None = None,
    kernel_name: str | None = None,
):
    """Execute a notebook with papermill; return the :class:`~aisec_lab.Scorecard` it wrote, if any.

    Parameters
    ----------
    name_or_path:
        A packaged notebook's name (``"01_scorecard"``; see :func:`list_notebooks`) or an ``.ipynb`` path.
    params:
        Values for the notebook's declared parameters. Unknown names and ill-typed values raise
        :class:`~aisec_lab.errors.ConfigError` before a kernel starts.
    out_dir:
        Folder for the results. The notebook's ``output_dir`` parameter is set to it, and the executed
        notebook is saved there as ``<name>.ipynb`` (also when a cell fails: it holds the traceback).
        Defaults to ``params["output_dir"]``, then the notebook's own default.
    timeout_s:
        Seconds each cell may run (default: no limit).
    kernel_name:
        Jupyter kernel to run (default: the notebook's, which is this Python for ``python3``).

    Returns the scorecard loaded from ``out_dir/scorecard.json`` when this run wrote it, else ``None``.
    Raises :class:`~aisec_lab.errors.NotebookExecutionError` naming the failing cell and its original error.
    """
    path = notebook_path(name_or_path)
    name = _name(path)
    specs = notebook_parameters(path)
    params = check_parameters(path, params)
    if out_dir is None:
        out_dir = params.get("output_dir") or (specs["output_dir"].default if "output_dir" in specs else None)
        if not out_dir:
            raise ConfigError(f"notebook {name} needs an output folder", got=None,
                              fix="pass out_dir=... (the executed notebook is saved there)")
    out = check_output_dir(out_dir)
    if "output_dir" in params and Path(params["output_dir"]).expanduser().absolute() != out:
        raise ConfigError("params['output_dir'] and out_dir name different folders",
                          got=f"{params['output_dir']!r} and {str(out)!r}", fix="give only out_dir")
    if "output_dir" in specs:
        params["output_dir"] = str(out)
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                  or not math.isfinite(timeout_s) or timeout_s <= 0):
        raise ConfigError("timeout_s must be a positive number of seconds or None", got=timeout_s, fix="e.g. 600")
    if kernel_name is not None and (not isinstance(kernel_name, str) or not kernel_name.strip()):
        raise ConfigError("kernel_name must be a kernel's name", got=kernel_name, fix="e.g. 'python3', or leave it None")

    from ._optional import require

    pm = require("papermill", purpose="run notebooks", extra="notebooks")
    from papermill.exceptions import PapermillExecutionError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("cannot create the output directory", got=f"{out}: {exc.strerror or exc}",
                          fix="pass a writable folder path") from None
    executed = out / f"{name}.ipynb"
    scorecard_json = out / "scorecard.json"
    before = _stat_key(scorecard_json)
    log.info("running notebook %s into %s with %s", path, out, params)
    with tempfile.TemporaryDirectory(prefix="aisec-lab-nb-") as tmp:
        tmp_nb = Path(tmp) / f"{name}.ipynb"
        try:
            pm.execute_notebook(
                str(path), str(tmp_nb), parameters=params, kernel_name=kernel_name, progress_bar=False,
                log_output=False, request_save_on_cell_execute=True, execution_timeout=timeout_s,
                extra_arguments=_kernel_arguments(),
            )
        except PapermillExecutionError as exc:
            _keep_executed(tmp_nb, executed, str(executed))
            where = f"cell {exc.cell_index}" + (f" (In [{exc.exec_count}])" if exc.exec_count else "")
            err = NotebookExecutionError(
                f"notebook {name} failed in {where}: {_first_line(exc.source)}",
                got=f"{exc.ename}: {exc.evalue}",
                fix=f"see the traceback in {executed}",
            )
            err.cell_index, err.cell_source, err.ename, err.evalue = exc.cell_index, exc.source, exc.ename, exc.evalue
            err.traceback = _ANSI.sub("", "\n".join(exc.traceback or []))
            err.executed_notebook = executed
            raise err from None
        except AisecLabError:
            raise
        except BaseException as exc:
            kept = _keep_executed(tmp_nb, executed, str(executed))
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: keep the evidence, re-raise
                raise
            kind = type(exc).__name__
            if kind == "NoSuchKernel":
                raise ConfigError("no such Jupyter kernel", got=kernel_name or str(exc),
                                  fix="leave kernel_name None, or pick one from `jupyter kernelspec list`") from None
            fix = f"see {executed}" if kept else "run it in Jupyter to see where it stops"
            if isinstance(exc, TimeoutError) or "Timeout" in kind:
                fix = f"a cell ran longer than timeout_s={timeout_s}; raise timeout_s or shrink the job ({fix})"
            err = NotebookExecutionError(f"notebook {name} could not be executed", got=f"{kind}: {exc}", fix=fix)
            err.cell_index, err.cell_source, err.ename, err.evalue = None, None, kind, str(exc)
            err.traceback, err.executed_notebook = None, executed if kept else None
            raise err from exc
        _keep_executed(tmp_nb, executed, str(executed))
    after = _stat_key(scorecard_json)
    if after is None or after == before:
        return None
    from .scorecard import Scorecard

    return Scorecard.load(out)


# -- helpers the notebooks call ----------------------------------------------------------------------------
def train_data_for(dataset: str | os.PathLike, sections: Any) -> Any:
    """The training split of ``dataset`` when one of ``sections`` needs it (privacy, backdoor), else ``None``.

    A data set given as an ``.npz`` file has no training split: such a section is refused with a clear error.
    """
    from .data import load_dataset
    from .sections import get_section

    if not sections:
        return None
    needs = [name for name in sections if get_section(name).needs_train_data]
    if not needs:
        return None
    if str(dataset).lower().endswith(".npz"):
        raise ConfigError(f"the {needs[0]!r} section needs the model's training data, which an .npz data set "
                          "does not carry", got=str(dataset),
                          fix="use a bundled data set, or call al.evaluate(..., train_data=...) from Python")
    return load_dataset(dataset, split="train")


def _check_scorecard_notebook(params: dict) -> None:
    from .sections import normalize_sections

    sections = params.get("sections") or []
    # names, duplicates and did-you-mean; the notebook loads the training split when a section needs it
    normalize_sections(sections, None, None, require_train_data=False)


def load_target(model: str | os.PathLike, framework: str | None = "pytorch", data: Any = None, *,
                seed: int = 0, trust: bool = False):
    """The :class:`~aisec_lab.Target` for a reference model's name or a model file's path.

    A name from ``aisec_lab.zoo.list_models()`` gives that reference model in ``framework`` (trained
    with ``seed`` on first use, then cached). A path is loaded with :func:`aisec_lab.load_model` and
    wrapped with the input shape, class count and clip range of ``data`` (a :class:`~aisec_lab.Dataset`).
    """
    from . import zoo

    if isinstance(model, str) and model in zoo.list_models():
        return zoo.target(model, framework or "pytorch", seed=seed)
    if not isinstance(model, (str, os.PathLike)):
        raise ConfigError("model must be a reference model name or a model file path", got=type(model).__name__,
                          fix=f"e.g. model='digits_cnn' (reference models: {', '.join(zoo.list_models())})")
    path = Path(model).expanduser()
    if not path.is_file():
        try:
            zoo.MODELS.get(str(model))
        except UnknownComponentError as exc:
            raise UnknownComponentError(f"model {str(model)!r} is neither a reference model nor an existing file",
                                        fix=f"{exc.fix}; or give the path to a model file (.pt, .pth, .keras)") from None
    if data is None:
        raise ConfigError("a model file needs the data set to tell its input shape and classes",
                          got=str(path), fix="pass data=al.load_dataset(...)")
    from .models import _KERAS_SUFFIXES, _TORCH_SUFFIXES, load_model, wrap_model

    implied = ("tensorflow" if path.suffix.lower() in _KERAS_SUFFIXES
               else "pytorch" if path.suffix.lower() in _TORCH_SUFFIXES else None)
    if implied and framework and framework != implied:
        raise ConfigError(f"{path.name} is a {implied} model file but framework={framework!r}", got=str(path),
                          fix=f"set framework={implied!r} (or None to tell it from the file)")
    native = load_model(path, framework=framework, trust=trust)
    clip = getattr(data, "clip_values", None) or (0.0, 1.0)
    return wrap_model(native, input_shape=data.input_shape, nb_classes=data.nb_classes, clip_values=clip,
                      name=path.stem)


class _Plots:
    """The scorecard's plots as one HTML block of PNG images: shows in Jupyter whatever the matplotlib backend."""

    def __init__(self, images: list[tuple[str, str]]):
        self.images = images  # (key, base64 PNG)

    def __len__(self) -> int:
        return len(self.images)

    def _repr_html_(self) -> str:
        return "<div>" + "".join(
            f'<figure style="display:inline-block;margin:4px"><img alt="{html.escape(k)}" '
            f'src="data:image/png;base64,{b64}"/><figcaption>{html.escape(k.replace("_", " "))}</figcaption></figure>'
            for k, b64 in self.images) + "</div>"

    def __repr__(self) -> str:
        return f"<scorecard plots: {', '.join(k for k, _ in self.images) or 'none'}>"


def plots(sc: Any, keys: tuple[str, ...] | list[str] | None = None) -> _Plots:
    """The scorecard's plots (robustness curve, perturbation norms, per class, gallery) for inline display."""
    from .scorecard.render.plots import PLOT_KEYS, figure_png_base64, figures

    if keys is not None:
        unknown = [k for k in keys if k not in PLOT_KEYS]
        if unknown:
            raise ConfigError("unknown plot", got=unknown[0], fix=f"use some of: {', '.join(PLOT_KEYS)}")
    figs = figures(sc.to_dict(), sc.samples)
    return _Plots([(k, figure_png_base64(f)) for k, f in figs.items() if keys is None or k in keys])


def comparison_table(comparison: Any):
    """A :func:`aisec_lab.compare` result as a pandas DataFrame, one row per metric (clean, then each ε)."""
    from ._optional import require

    pd = require("pandas", purpose="tabulate a comparison", extra="notebooks")
    rows = []
    for r in comparison.rows:
        rows.append({"metric": "clean accuracy" if r.eps is None else "robust accuracy",
                     "eps": "-" if r.eps is None else r.eps_display, "A": r.a, "B": r.b, "B - A": r.difference,
                     "n": r.n, "A only": r.a_only, "B only": r.b_only, "p": r.p_value})
    frame = pd.DataFrame(rows)
    frame.attrs.update(a=comparison.a.get("model"), b=comparison.b.get("model"), norm=comparison.norm)
    return frame


def save_comparison(comparison: Any, out_dir: str | os.PathLike) -> Path:
    """Write ``comparison.json`` and ``comparison.txt`` (the summary) into ``out_dir`` atomically; return the JSON path."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError("the output directory is an existing file", got=str(out), fix="pass a folder path")
    path = atomic_write_text(out / "comparison.json",
                             json.dumps(comparison.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
    atomic_write_text(out / "comparison.txt", comparison.summary() + "\n")
    return path


# -- value checks and outputs of the packaged notebooks ---------------------------------------------------
#: the parameters of 02_adversarial_training that check_training_parameters reads
_TRAINING_KEYS = ("model", "framework", "dataset", "recipe", "eps", "epochs", "batch_size", "seed", "eval_attacks",
                  "eval_eps", "eval_n_samples")
_FRAMEWORKS = ("pytorch", "tensorflow")


def _did_you_mean(value: str, options: list[str]) -> str:
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def _check_model_ref(model: Any, dataset: str) -> None:
    """``model`` names a reference model trained on ``dataset``, or an existing model file (nothing is loaded)."""
    from . import zoo

    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str) or not model.strip():
        raise ConfigError("model must be a reference model name or a model file path", got=model,
                          fix=f"e.g. model='digits_cnn' (reference models: {', '.join(zoo.list_models())})")
    if model in zoo.list_models():
        trained_on = zoo.describe(model).get("dataset")
        if trained_on and trained_on != dataset:
            raise ConfigError(f"reference model {model!r} was trained on {trained_on!r}, not on {dataset!r}",
                              got=f"model={model!r}, dataset={dataset!r}", fix=f"set dataset={trained_on!r}")
        return
    if Path(model).expanduser().is_file():
        return
    raise UnknownComponentError(f"model {model!r} is neither a reference model nor an existing file",
                                fix=f"{_did_you_mean(model, zoo.list_models())}reference models: "
                                    f"{', '.join(zoo.list_models())}; or give the path to a model file (.pt, .pth, .keras)")


def _check_eval_attacks(attacks: Any) -> None:
    """A preset name, one attack name, or a non-empty list of distinct attack names (registry did-you-mean)."""
    from .attacks import ATTACKS, PRESETS

    if isinstance(attacks, str):
        if attacks in PRESETS or attacks in ATTACKS:
            return
        names = PRESETS.names() + ATTACKS.names()
        raise UnknownComponentError(f"unknown attack or preset {attacks!r} for eval_attacks",
                                    fix=f"{_did_you_mean(attacks, names)}presets: {', '.join(PRESETS.names())}; "
                                        f"attacks: {', '.join(ATTACKS.names())}")
    if not isinstance(attacks, (list, tuple)) or not attacks or not all(isinstance(a, str) for a in attacks):
        raise ConfigError("eval_attacks must be a preset name or a non-empty list of attack names", got=attacks,
                          fix="e.g. eval_attacks='standard' or eval_attacks=['fgsm', 'pgd']")
    for name in attacks:
        ATTACKS.get(name)  # raises UnknownComponentError with did-you-mean
    dupes = sorted({a for a in attacks if list(attacks).count(a) > 1})
    if dupes:
        raise ConfigError("eval_attacks lists the same attack twice", got=dupes, fix="list each attack once")


def check_training_parameters(*, model: Any, framework: Any, dataset: Any, recipe: Any, eps: Any, epochs: Any,
                              batch_size: Any, seed: Any, eval_attacks: Any = "standard", eval_eps: Any = None,
                              eval_n_samples: Any = None):
    """Check an adversarial-training run's settings before anything trains; return its :class:`~aisec_lab.recipes.Recipe`.

    The value checks of ``02_adversarial_training`` (run by :func:`check_parameters`, so by
    :func:`run_notebook` before a kernel starts) and of ``aisec-lab train``: an unknown recipe, model,
    data set or attack gets a did-you-mean; ``epochs``/``batch_size`` below 1, ε that is not positive or
    looks like pixel units for the data's input range (``eps=8`` on [0, 1] images), and ``eval_n_samples``
    outside 1..(test split size) are refused with :class:`~aisec_lab.errors.ConfigError`. Only the bundled
    data set is read (cheap); no model is loaded and no framework is imported.
    """
    import numpy as np

    from .data import list_datasets, load_dataset
    from .defenses import training as recipes
    from .evaluation.metrics import validate_eps

    if not isinstance(recipe, str):
        raise ConfigError("recipe must be a recipe name", got=recipe,
                          fix=f"one of: {', '.join(recipes.list_recipes())}")
    spec = recipes.get(recipe, eps=eps, epochs=epochs, batch_size=batch_size, seed=seed)
    if framework not in _FRAMEWORKS:
        text = framework if isinstance(framework, str) else repr(framework)
        raise ConfigError("framework must be 'pytorch' or 'tensorflow'", got=framework,
                          fix=f"{_did_you_mean(str(text), list(_FRAMEWORKS))}recipes train torch and Keras models")
    if isinstance(dataset, os.PathLike) or (isinstance(dataset, str) and dataset.lower().endswith(".npz")):
        raise ConfigError("adversarial training here uses a bundled data set's train and test splits; "
                          "an .npz file has no splits", got=os.fspath(dataset),
                          fix=f"use dataset='digits' ({', '.join(list_datasets())}), or in Python: "
                              "al.recipes.get(...).fit(target, al.load_npz(train), test_data=al.load_npz(test))")
    if not isinstance(dataset, str):
        raise ConfigError("dataset must be a bundled data set's name", got=dataset,
                          fix=f"one of: {', '.join(list_datasets())}")
    test = load_dataset(dataset, split="test")  # unknown names: UnknownComponentError with did-you-mean
    _check_model_ref(model, dataset)
    lo, hi = test.clip_values if test.clip_values is not None else (0.0, 1.0)
    clip_range = float(np.min(np.asarray(hi, dtype=float) - np.asarray(lo, dtype=float)))
    input_size = int(np.prod(test.input_shape))
    validate_eps([spec.eps], norm=spec.norm, clip_range=clip_range, input_size=input_size)
    if eval_eps is not None:
        validate_eps(eval_eps, norm=spec.norm, clip_range=clip_range, input_size=input_size)
    _check_eval_attacks(eval_attacks)
    if eval_n_samples is not None:
        if isinstance(eval_n_samples, bool) or not isinstance(eval_n_samples, (int, np.integer)) or eval_n_samples < 1:
            raise ConfigError("eval_n_samples must be a positive integer or None (the whole test split)",
                              got=eval_n_samples, fix="e.g. eval_n_samples=200")
        if eval_n_samples > test.n:
            raise ConfigError(f"eval_n_samples={eval_n_samples} is larger than the {dataset} test split "
                              f"({test.n} samples)", got=eval_n_samples,
                              fix=f"use at most {test.n}, or None for the whole split")
    return spec


def _check_training_notebook(params: dict) -> None:
    check_training_parameters(**{k: params[k] for k in _TRAINING_KEYS})


@dataclass(frozen=True)
class _Contract:
    """What the runners know about a packaged notebook beyond its parameters cell."""

    #: value checks on the full parameters (declared defaults updated with the given values); raises
    check: Any = None
    #: parameters ``check`` reads: a notebook of the same name that lacks one is not checked
    needs: frozenset = frozenset()
    #: (label, path relative to the output folder) of the files a run writes, in the order they are listed
    outputs: tuple = ()


_CONTRACTS: dict[str, _Contract] = {
    "01_scorecard": _Contract(check=_check_scorecard_notebook, needs=frozenset({"sections"}), outputs=(("scorecard (HTML)", "scorecard.html"), ("scorecard (JSON)", "scorecard.json"),
                                       ("scorecard (Markdown)", "scorecard.md"))),
    "02_adversarial_training": _Contract(
        check=_check_training_notebook, needs=frozenset(_TRAINING_KEYS),
        outputs=(("model (PyTorch)", "model.pt"), ("model (Keras)", "model.keras"), ("recipe card", "recipe.yaml"),
                 ("history", "history.json"), ("scorecard before", "before/scorecard.html"),
                 ("scorecard after", "after/scorecard.html"), ("comparison", "comparison.md"),
                 ("checkpoints", "ckpt"))),
    "04_compare_scorecards": _Contract(outputs=(("comparison (JSON)", "comparison.json"),
                                                ("comparison (text)", "comparison.txt"))),
}


def notebook_outputs(name_or_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(label, path)`` of the files a packaged notebook's run wrote into ``out_dir`` (those that exist), in order."""
    contract = _CONTRACTS.get(_name(notebook_path(name_or_path)))
    out = Path(out_dir)
    return [(label, out / rel) for label, rel in (contract.outputs if contract else ()) if (out / rel).exists()]


# -- python -m aisec_lab.notebooks -------------------------------------------------------------------------
def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m aisec_lab.notebooks NOTEBOOK OUT_DIR [-p NAME VALUE]...``: run a notebook, print its files."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aisec_lab.notebooks",
                                     description="Run a packaged (or any) notebook with papermill.")
    parser.add_argument("notebook", nargs="?", help=f"a name ({', '.join(list_notebooks())}) or an .ipynb path")
    parser.add_argument("out_dir", nargs="?", help="folder for the executed notebook and the scorecard files")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter, parsed against its declared type (repeatable)")
    parser.add_argument("--timeout-s", type=float, default=None, help="seconds each cell may run")
    parser.add_argument("--list", action="store_true", help="list the packaged notebooks and their parameters")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.list or not args.notebook:
            for nb in list_notebooks():
                print(nb)
                for spec in notebook_parameters(nb).values():
                    print(f"  {spec.name}: {spec.type} = {spec.default!r}" + (f"  # {spec.help}" if spec.help else ""))
            return 0
        specs = notebook_parameters(args.notebook)
        params: dict[str, Any] = {}
        for key, text in args.parameter:
            if key not in specs:
                check_parameters(args.notebook, {key: text})  # raises the did-you-mean error
            params[key] = parse_cli_value(specs[key], text)
        if args.out_dir is None:
            parser.error("OUT_DIR is required to run a notebook")
        sc = run_notebook(args.notebook, params, args.out_dir, timeout_s=args.timeout_s)
    except AisecLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    name = _name(notebook_path(args.notebook))
    print(f"{'executed notebook:':<22}{_display_path(out / f'{name}.ipynb')}")
    for label, path in notebook_outputs(args.notebook, out):
        print(f"{label + ':':<22}{_display_path(path)}")
    if sc is None:
        return 0
    print()
    print(sc.summary())
    return 0 if sc.complete else 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
