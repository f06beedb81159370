"""Checks of caller-supplied names (models, experiments, computes) and extra script arguments."""

from __future__ import annotations

import re
from collections.abc import Mapping

from amllib.errors import InvalidInput, quoted

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def check_name(value: str, *, what: str) -> str:
    """A model, experiment or compute name: letters, digits, '.', '_' and '-'."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{what} {quoted(value)} must start with a letter or digit and use only letters, digits, '.', '_' or '-'"
        )
    return value


SERVICE_OPTIONS = ("data-path", "estimators")  # set by the control plane, never by a caller's args
MAX_SCRIPT_ARGS = 50
MAX_ARG_VALUE = 4096


def check_script_args(args: Mapping[str, object]) -> None:
    """Extra script arguments: plain names, short values, and none that sets an option the service sets.

    argparse takes any unambiguous prefix of an option (`--data` for `--data-path`) and
    treats `-`/`_` alike only if the script says so, so every spelling and prefix is refused.
    """
    if len(args) > MAX_SCRIPT_ARGS:
        raise InvalidInput(f"args has {len(args)} entries; at most {MAX_SCRIPT_ARGS} are allowed")
    for name, value in args.items():
        check_name(name, what="args key")
        option = name.replace("_", "-").lower()
        for reserved in SERVICE_OPTIONS:
            if reserved.startswith(option):
                raise InvalidInput(
                    f"args key {quoted(name)} would set --{reserved}, which the service sets itself"
                    + (" (use the estimators field)" if reserved == "estimators" else "")
                )
        text = str(value)
        if len(text) > MAX_ARG_VALUE:
            raise InvalidInput(f"args value of {quoted(name)} is longer than {MAX_ARG_VALUE} characters")
        if "\x00" in text:
            raise InvalidInput(f"args value of {quoted(name)} contains a NUL character")
