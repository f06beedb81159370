"""amllib/script_args.py: a script's arguments read from its source, never run."""

from __future__ import annotations

import json
from pathlib import Path

from amllib.script_args import MAX_BYTES, script_arguments
from amllib.settings import REPO_ROOT

SOURCE = """
import argparse, os
os.system("touch ran")  # reading the script must never run it
parser = argparse.ArgumentParser()
parser.add_argument("--data-path")
parser.add_argument("--estimators", type=int, default=100, help="number of trees")
parser.add_argument("input")  # positional: not a --name the service can pass
parser.add_argument("-l", "--learning-rate", type=float, default=0.1)
parser.add_argument("--mode", choices=("fast", "slow"), default="fast", required=True)
parser.add_argument("--verbose", action="store_true")
parser.add_argument("--huge", type=float, default=1e999)
parser.add_argument("--computed", default=os.cpu_count())
parser.add_argument("--estimators", type=str)  # declared twice: the first stands
"""


def test_arguments_are_read_from_the_syntax_tree_with_their_defaults(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SOURCE)
    arguments, why = script_arguments(script)
    assert why is None and not (tmp_path / "ran").exists()
    assert [a["name"] for a in arguments] == ["estimators", "learning-rate", "mode", "verbose", "huge", "computed"]
    named = {a["name"]: a for a in arguments}
    assert named["estimators"] == {
        "name": "estimators",
        "type": "int",
        "default": 100,
        "help": "number of trees",
        "choices": None,
        "required": False,
    }
    assert (named["mode"]["choices"], named["mode"]["required"]) == (["fast", "slow"], True)
    assert (named["verbose"]["type"], named["verbose"]["default"]) == ("flag", False)
    assert named["huge"]["default"] == "Infinity" and named["computed"]["default"] is None
    json.dumps(arguments, allow_nan=False)  # what the API sends, as JSON


def test_a_file_that_does_not_parse_or_is_too_large_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    assert script_arguments(broken) == ([], "does not parse as Python (SyntaxError)")
    deep = tmp_path / "deep.py"
    deep.write_text("x = " + "(" * 5000 + ")" * 5000 + "\n")
    assert script_arguments(deep)[0] == [] and script_arguments(deep)[1].startswith("does not parse")
    large = tmp_path / "large.py"
    large.write_text("#" * (MAX_BYTES + 1))
    assert script_arguments(large) == ([], f"larger than {MAX_BYTES // 1024} KiB: not read")


def test_the_projects_own_scripts() -> None:
    arguments, _ = script_arguments(REPO_ROOT / "training" / "scikit-titanic.py")
    assert [a["name"] for a in arguments][:2] == ["estimators", "seed"]


def test_a_script_edited_since_is_read_again(tmp_path: Path) -> None:
    script = tmp_path / "edited.py"
    script.write_text('import argparse\nargparse.ArgumentParser().add_argument("--one")\n')
    assert [a["name"] for a in script_arguments(script)[0]] == ["one"]
    script.write_text('import argparse\nargparse.ArgumentParser().add_argument("--other", type=int)\n')
    assert [a["name"] for a in script_arguments(script)[0]] == ["other"]
