"""The name and path checks every caller's value passes through."""

from __future__ import annotations

from pathlib import Path

import pytest

from amllib.errors import InvalidInput
from amllib.files import place_for
from amllib.names import check_name, check_script_args
from amllib.paths import safe_relpath
from amllib.settings import Settings


@pytest.mark.parametrize("value", ["exp\n", "m\n", "exp\r", "a\nb", "exp\n\n"])
def test_a_name_with_a_newline_is_refused(value: str) -> None:
    # `$` with re.match lets a trailing newline through; the patterns must match the whole value.
    with pytest.raises(InvalidInput):
        check_name(value, what="model name")


@pytest.mark.parametrize("value", ["evil\n", "data/evil\n", "evil\n/x"])
def test_a_path_with_a_newline_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        safe_relpath(value, what="path")


def test_a_reserved_args_key_with_a_newline_is_refused() -> None:
    with pytest.raises(InvalidInput):
        check_script_args({"data-path\n": "/etc"})


def test_a_token_name_with_a_newline_is_not_a_name() -> None:
    settings = Settings(_env_file=None, api_tokens="ci\n:secret-value")
    assert "ci\n" not in settings.named_tokens.values()


def test_plain_names_and_paths_still_pass() -> None:
    assert check_name("titanic-1.0_x", what="model name") == "titanic-1.0_x"
    assert str(safe_relpath("./data/titanic", what="path")) == "data/titanic"


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "", "a\\..\\b", "a\x00b", "./.."])
def test_a_file_a_backend_names_outside_the_folder_is_skipped(tmp_path: Path, name: str) -> None:
    assert place_for(tmp_path / "out", name) is None


def test_a_file_a_backend_names_inside_the_folder_has_its_place(tmp_path: Path) -> None:
    assert place_for(tmp_path, "sub/./model.pkl") == tmp_path / "sub" / "model.pkl"
    assert place_for(tmp_path, "weights..v2.bin") == tmp_path / "weights..v2.bin"
