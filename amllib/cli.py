"""What the command-line scripts share: their flags, settings, one-line errors and pipeline outputs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from amllib.errors import AmlError, ConfigError, NotFound, kind_of
from amllib.pipeline_output import Output
from amllib.settings import AZURE_IDENTITY, REPO_ROOT, Settings, dotenv_file, load_settings

# flag → setting, for the flags that override the environment and .env (--compute sets AZML_COMPUTE_NAME)
OVERRIDES = {
    "model": "model",
    "experiment": "experiment",
    "script": "script",
    "datapath": "datapath",
    "compute": "compute_name",
}
ALWAYS_READ = ("backend", "home", "env_file")
output = Output()  # the running script's: ScriptParser.parse() sets it from --json and --quiet


def version() -> str:
    for line in (REPO_ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.partition("=")[2].strip().strip('"')
    return "unknown"


def _variables(reads: tuple[str, ...]) -> str:
    lines = ["Reads (from the environment, else the .env file; a flag above wins over both):"]
    for name in (*reads, *ALWAYS_READ):
        field = Settings.model_fields[name]
        lines.append(f"  AZML_{name.upper():<22} {field.description or ''}")
    identity = ", ".join(f"AZML_{n.upper()}" for n in AZURE_IDENTITY)
    lines.append(f"  on the azureml backends also {identity} and the credentials docs/azure.md names")
    return "\n".join(lines)


class ScriptParser(argparse.ArgumentParser):
    """argparse keeping the docstring's examples as written, with --json, --quiet, --version and the
    override flags; parse() sets the module's `output`."""

    def __init__(self, doc: str | None, *, reads: tuple[str, ...], overrides: tuple[str, ...] = ()) -> None:
        super().__init__(
            description=doc, epilog=_variables(reads), formatter_class=argparse.RawDescriptionHelpFormatter
        )
        self.overrides = overrides
        self.add_argument("--json", action="store_true", help="print one JSON object on stdout (text to stderr)")
        self.add_argument("--quiet", action="store_true", help="no progress lines (the result is still printed)")
        self.add_argument("--version", action="version", version=f"%(prog)s {version()}")
        for flag in overrides:
            setting = OVERRIDES[flag]
            self.add_argument(f"--{flag}", metavar="NAME", help=f"instead of AZML_{setting.upper()}")

    def parse(self) -> argparse.Namespace:
        """The command line (a mistake in it: usage and exit 2, as argparse does); sets the script's output."""
        global output
        parsed = self.parse_args()
        output = Output(as_json=parsed.json, quiet=parsed.quiet)
        return parsed

    def settings(self, parsed: argparse.Namespace, *names: str) -> Settings:
        """Settings with the flags given applied, `names` required (see settings_requiring)."""
        given = {OVERRIDES[flag]: getattr(parsed, flag) for flag in self.overrides if getattr(parsed, flag)}
        return settings_requiring(*names, **given)


def settings_requiring(*names: str, **overrides: object) -> Settings:
    """Load settings (flags in `overrides` winning) and check `names` plus, on azureml, the identity: all
    missing ones at once, saying where they were looked for (the scripts may run from any folder)."""
    source = dotenv_file()
    settings = load_settings(_env_file=source, **overrides)
    if source is not None:
        output.progress(f"### Settings from the environment and {source}")
    needed = list(names) + (list(AZURE_IDENTITY) if settings.on_azure else [])
    try:
        settings.require(*needed)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (set them in the environment, or in a .env file; {dotenv_said(source)})") from None
    return settings


def dotenv_said(source: Path | None) -> str:
    """Which .env file was read, in words: the scripts run from any folder, so say it."""
    if source is not None:
        return f"the .env file read: {source}"
    if os.environ.get("AZML_ENV_FILE") is not None:
        return "no .env file read (AZML_ENV_FILE=none)"
    return f"no .env file read: none in {Path.cwd()} nor in {REPO_ROOT}"


def place(settings: Settings) -> str:
    """Where the scripts look for data, runs and models: the backend and its AZML_HOME or workspace."""
    if settings.on_azure:
        return (
            f"the {settings.backend} backend, workspace {settings.workspace or '?'} "
            f"(resource group {settings.resgrp or '?'}, subscription {settings.subid or '?'})"
        )
    return f"the local backend, AZML_HOME={settings.home}"


def set_pipeline_variable(name: str, value: object, *, github_name: str) -> None:
    """Hand a value to the next pipeline step (the running script's output decides how)."""
    output.variable(name, value, github_name=github_name)


def run_main(main: Callable[[], int]) -> None:
    """Run a script's main; an AmlError becomes one line on stderr (an annotation in a pipeline, an
    {"error": ...} object with --json) and exit status 1."""
    try:
        code = main()
    except NotFound as exc:  # what is not found depends on where the script looked: say where
        output.error(f"{exc} (looked in {_place_or_unknown()})", kind="not_found")
        code = 1
    except AmlError as exc:
        output.error(str(exc), kind=kind_of(exc))
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


def _place_or_unknown() -> str:
    try:
        return place(load_settings())
    except AmlError:
        return "a backend whose settings did not load"


class UploadProgress:
    """Shows an upload's progress: a tqdm bar (bytes, rate, ETA) on a terminal, one line per 10 % in a log
    (CI captures output, where a redrawn bar is noise), nothing when quiet."""

    def __init__(self, *, files: int, total: int, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.files, self.total, self.quiet = files, total, quiet
        self.stream = stream or sys.stdout
        self.done_files = self.done_bytes = 0
        self.started = time.monotonic()
        self._next_tenth = 1
        self._bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream)

    def __call__(self, sent: int, finished: int = 0) -> None:
        """Told the bytes sent and the files finished since the last call (amllib.backends.base.Progress)."""
        self.done_files += finished
        self.done_bytes += sent
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(sent)
            self._bar.set_postfix_str(f"{self.done_files}/{self.files} files", refresh=False)
            return
        share = self.done_bytes / self.total if self.total else self.done_files / max(1, self.files)
        if self.done_files < self.files:  # 100 % is said once the last file is in
            share = min(share, 0.99)
        while self._next_tenth <= 10 and share >= self._next_tenth / 10:
            print(f"### uploaded {self._next_tenth * 10}%: {self.line()}", file=self.stream, flush=True)
            self._next_tenth += 1

    def line(self) -> str:
        seconds = max(1e-6, time.monotonic() - self.started)
        rate = self.done_bytes / seconds
        left = (self.total - self.done_bytes) / rate if rate else 0.0
        return (
            f"{self.done_files} of {self.files} files, {_size(self.done_bytes)} of {_size(self.total)}, "
            f"{_size(rate)}/s, about {left:.0f} s left"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
