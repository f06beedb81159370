"""amllib/pipeline_output.py: text, one JSON object, pipeline variables and annotations (the scripts' own
tests in tests/test_scripts.py run them end to end)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from amllib.pipeline_output import Output


def test_a_value_on_many_lines_is_one_github_output_and_one_escaped_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    screen = io.StringIO()
    out = Output(stdout=screen)
    out.variable("AZML_NOTE", "first\nsecond=2 100%", github_name="note")
    out.variable("AZML_NONE", None, github_name="none")  # nothing to hand on: nothing written
    assert screen.getvalue() == "##vso[task.setvariable variable=AZML_NOTE]first%0Asecond=2 100%AZP25\n"
    first, value_1, value_2, last = (tmp_path / "out").read_text().splitlines()
    assert first.startswith("note<<AZML_") and last == first.split("<<")[1]
    assert (value_1, value_2) == ("first", "second=2 100%")


def test_with_json_stdout_holds_only_the_object(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TF_BUILD", "True")
    screen = io.StringIO()
    out = Output(as_json=True, stdout=screen)
    out.say("for people")
    out.variable("AZML_X", 1, github_name="x")
    out.result({"x": 1, "odd": float("nan")})
    assert json.loads(screen.getvalue()) == {"x": 1, "odd": "NaN"}
    assert capsys.readouterr().err == "for people\n"
    failed = io.StringIO()
    Output(as_json=True, stdout=failed).error("it broke\nbadly", kind="backend")
    assert json.loads(failed.getvalue()) == {"error": "backend", "detail": "it broke\nbadly"}
    annotated = io.StringIO()
    Output(stdout=annotated).error("it broke\nbadly")
    assert annotated.getvalue() == "##vso[task.logissue type=error]it broke%0Abadly\n"


def test_output_writes_to_stdout_as_it_is_when_it_writes(capsys: pytest.CaptureFixture) -> None:
    out = Output()  # made before the stream is replaced, as the scripts' module-level one is
    with contextlib.redirect_stdout(io.StringIO()) as elsewhere:
        out.variable("AZML_X", 1, github_name="x")
    assert elsewhere.getvalue() == "##vso[task.setvariable variable=AZML_X]1\n"
    out.say("now")
    assert capsys.readouterr().out == "now\n"
