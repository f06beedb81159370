"""What a script tells the pipeline running it: text for people, one JSON object for programs, pipeline
variables for the next step and errors as annotations.

Azure Pipelines reads `##vso[...]` logging commands and GitHub Actions `::error::` workflow commands
from standard output; GitHub Actions reads step outputs from the file named by $GITHUB_OUTPUT. With
`--json` standard output holds exactly one JSON object (on one line), so the text goes to standard
error and no command is printed (the object holds the same values); $GITHUB_OUTPUT is written either way.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from typing import Any, TextIO

from amllib.jsonsafe import json_safe


def on_azure_pipelines() -> bool:
    return os.environ.get("TF_BUILD", "").lower() == "true"


def on_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS", "").lower() == "true"


def _vso_escape(text: str) -> str:
    """A logging command's message on one line (the agent's own escapes)."""
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def _github_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class Output:
    """One script's output: say() for people, variable() for the next step, result() at the end."""

    def __init__(self, *, as_json: bool = False, quiet: bool = False, stdout: TextIO | None = None) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self._stdout = stdout
        self.values: dict[str, Any] = {}  # the pipeline variables set, kept for the JSON object too

    @property
    def stdout(self) -> TextIO:
        """The given stream, else sys.stdout as it is now (a caller may have redirected it since)."""
        return self._stdout or sys.stdout

    @property
    def text(self) -> TextIO:
        """Where lines for people go: standard output, or standard error when it is kept for JSON."""
        return sys.stderr if self.as_json else self.stdout

    def say(self, line: str) -> None:
        print(line, file=self.text, flush=True)

    def progress(self, line: str) -> None:
        """A line only people want while they wait: dropped with --quiet."""
        if not self.quiet:
            self.say(line)

    def variable(self, name: str, value: object, *, github_name: str) -> None:
        """Hand a value to the next pipeline step: ##vso[task.setvariable] (when stdout is not JSON) and
        $GITHUB_OUTPUT (a value on many lines in its delimited form)."""
        if value is None:
            return
        text = str(value)
        self.values[github_name] = value
        if not self.as_json:
            print(f"##vso[task.setvariable variable={name}]{_vso_escape(text)}", file=self.stdout, flush=True)
        github_output = os.environ.get("GITHUB_OUTPUT")
        if github_output:
            with open(github_output, "a", encoding="utf-8") as handle:
                if "\n" in text or "\r" in text:
                    delimiter = f"AZML_{uuid.uuid4().hex}"
                    handle.write(f"{github_name}<<{delimiter}\n{text}\n{delimiter}\n")
                else:
                    handle.write(f"{github_name}={text}\n")

    def result(self, body: dict[str, Any]) -> None:
        """The script's answer as one JSON object on standard output (with --json only)."""
        if self.as_json:
            print(json.dumps(json_safe(body), ensure_ascii=False, sort_keys=True), file=self.stdout, flush=True)

    def error(self, message: str, *, kind: str = "error", extra: dict[str, Any] | None = None) -> None:
        """An error: one line on standard error, an annotation where a pipeline shows them, and with --json
        the object {"error": kind, "detail": message, ...} on standard output."""
        print(f"ERROR! {message}", file=sys.stderr, flush=True)
        if self.as_json:
            self.result({"error": kind, "detail": message, **(extra or {})})
            return
        if on_azure_pipelines():
            print(f"##vso[task.logissue type=error]{_vso_escape(message)}", file=self.stdout, flush=True)
        if on_github_actions():
            print(f"::error::{_github_escape(message)}", file=self.stdout, flush=True)
