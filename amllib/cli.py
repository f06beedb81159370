"""What the three command-line scripts share: settings, one-line errors, pipeline outputs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from amllib.errors import AmlError, ConfigError, NotFound
from amllib.settings import AZURE_IDENTITY, Settings, load_settings


def settings_requiring(*names: str) -> Settings:
    """Load settings and check `names` plus, on azureml, the identity: all missing ones at once, saying where
    they were looked for (the environment, and .env in the current folder: the scripts may run from anywhere)."""
    settings = load_settings()
    needed = list(names) + (list(AZURE_IDENTITY) if settings.on_azure else [])
    try:
        settings.require(*needed)
    except ConfigError as exc:
        dotenv = Path.cwd() / ".env"
        found = "found" if dotenv.is_file() else "none there"
        raise ConfigError(
            f"{exc} (set them in the environment or in .env in the current folder: {dotenv}, {found})"
        ) from None
    return settings


def place(settings: Settings) -> str:
    """Where the scripts look for data, runs and models: the backend and its AZML_HOME or workspace."""
    if settings.on_azure:
        return (
            f"the {settings.backend} backend, workspace {settings.workspace or '?'} "
            f"(resource group {settings.resgrp or '?'}, subscription {settings.subid or '?'})"
        )
    return f"the local backend, AZML_HOME={settings.home}"


def set_pipeline_variable(name: str, value: object, *, github_name: str) -> None:
    """Hand a value to the next pipeline step: Azure DevOps logging command and GITHUB_OUTPUT."""
    print(f"##vso[task.setvariable variable={name}]{value}")
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a", encoding="utf-8") as handle:
            handle.write(f"{github_name}={value}\n")


def run_main(main: Callable[[], int]) -> None:
    """Run a script's main; an AmlError becomes one line on stderr and exit status 1."""
    try:
        code = main()
    except NotFound as exc:  # what is not found depends on where the script looked: say where
        print(f"ERROR! {exc} (looked in {_place_or_unknown()})", file=sys.stderr)
        code = 1
    except AmlError as exc:
        print(f"ERROR! {exc}", file=sys.stderr)
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
    (CI captures output, where a redrawn bar is noise), nothing when quiet. Call it with each file's bytes."""

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

    def __call__(self, size: int) -> None:
        self.done_files += 1
        self.done_bytes += size
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(size)
            self._bar.set_postfix_str(f"{self.done_files}/{self.files} files", refresh=False)
            return
        share = self.done_bytes / self.total if self.total else self.done_files / max(1, self.files)
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
