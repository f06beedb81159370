"""A training script's own command-line arguments, read from its source (never run): what the train form
offers beside the service's own fields.

Scripts take their arguments with argparse (the seed's do: `parser.add_argument("--estimators", type=int,
default=100)`). Each `add_argument` call with a `--name` is read from the syntax tree: its default when it
is a literal, its type's name, its help text and choices. Nothing is imported or executed, so a script
that does anything at all when run is only read here. A file that does not parse, or is larger than
MAX_BYTES, has no arguments to show (and says why).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

from amllib.jsonsafe import json_safe

MAX_BYTES = 512 * 1024
SET_BY_SERVICE = frozenset({"data-path", "data_path"})  # the service passes the data version's folder itself


def _literal(node: ast.AST | None) -> Any:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str | int | float | bool | list | tuple) or value is None else None


def _argument(call: ast.Call) -> dict[str, Any] | None:
    names = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    long = next((n for n in names if n.startswith("--")), None)
    if long is None or len(long) > 66:
        return None
    name = long[2:]
    if name in SET_BY_SERVICE:
        return None
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    kind = keywords.get("type")
    action = _literal(keywords.get("action"))
    choices = _literal(keywords.get("choices"))
    default = _literal(keywords.get("default"))
    if action in ("store_true", "store_false") and default is None:
        default = action == "store_false"
    help_text = _literal(keywords.get("help"))
    return {
        "name": name,
        "type": kind.id
        if isinstance(kind, ast.Name)
        else ("flag" if action in ("store_true", "store_false") else "str"),
        "default": list(default) if isinstance(default, tuple) else default,
        "help": help_text[:300] if isinstance(help_text, str) else None,
        "choices": [str(c) for c in choices][:50] if isinstance(choices, list | tuple) else None,
        "required": _literal(keywords.get("required")) is True,
    }


def script_arguments(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """(the arguments it takes, in the order declared; why none could be read, or None). Parsed once per
    version of the file (its size and modification time): GET /scripts asks on every train form."""
    try:
        found = path.stat()
    except OSError as exc:
        return [], f"could not be read ({exc.strerror or exc})"
    return _parsed(path, found.st_size, found.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _parsed(path: Path, size: int, mtime_ns: int) -> tuple[list[dict[str, Any]], str | None]:
    try:
        if size > MAX_BYTES:
            return [], f"larger than {MAX_BYTES // 1024} KiB: not read"
        tree = ast.parse(path.read_bytes(), filename=path.name)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return [], f"does not parse as Python ({type(exc).__name__})"
    except OSError as exc:
        return [], f"could not be read ({exc.strerror or exc})"
    found: dict[str, dict[str, Any]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            argument = _argument(node)
            if argument is not None and argument["name"] not in found:
                found[argument["name"]] = json_safe(argument)  # a default of 1e999 is no JSON number
    ordered = sorted(found.values(), key=lambda a: a["name"] != "estimators")  # estimators first, then as declared
    return ordered[:100], None
