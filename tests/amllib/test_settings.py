"""Settings: typed, validated, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from amllib.errors import ConfigError
from amllib.settings import Settings, load_settings


def test_require_names_every_missing_variable() -> None:
    settings = Settings(_env_file=None)
    with pytest.raises(ConfigError) as caught:
        settings.require("model", "experiment", "datapath")
    assert str(caught.value) == "missing required variables: AZML_MODEL, AZML_EXPERIMENT, AZML_DATAPATH"


def test_invalid_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZML_COMPUTE_MAX_NODES", "zero")
    monkeypatch.setenv("AZML_BACKEND", "gcp")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert "AZML_COMPUTE_MAX_NODES" in str(caught.value) and "AZML_BACKEND" in str(caught.value)


def test_db_url_is_sqlite_or_postgresql_and_a_wrong_one_is_not_echoed(tmp_path: Path) -> None:
    assert Settings(_env_file=None, db_url=f"sqlite:///{tmp_path}/j.sqlite").db_path == tmp_path / "j.sqlite"
    assert Settings(_env_file=None, home=tmp_path).db_path == tmp_path / "jobs.sqlite"
    assert not Settings(_env_file=None, home=tmp_path).db_on_postgres
    for url in ("postgresql://u:p@h/db", "postgres://u:p@h:5433/db"):
        assert Settings(_env_file=None, db_url=url).db_on_postgres
    with pytest.raises(ConfigError, match="not a file"):
        _ = Settings(_env_file=None, db_url="postgresql://x/y").db_path
    with pytest.raises(ConfigError, match="sqlite:///") as caught:
        _ = Settings(_env_file=None, db_url="mysql://user:hunter2@db/jobs").db_on_postgres
    assert "hunter2" not in str(caught.value)


def test_env_file_is_read_from_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("AZML_MODEL=from-dotenv\nAZML_COMPUTE_MAX_NODES=7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AZML_MODEL", raising=False)
    monkeypatch.delenv("AZML_COMPUTE_MAX_NODES", raising=False)
    settings = load_settings()
    assert (settings.model, settings.compute_max_nodes) == ("from-dotenv", 7)
    monkeypatch.setenv("AZML_MODEL", "from-environment")
    assert load_settings().model == "from-environment"


@pytest.mark.parametrize("value", ["inf", "nan", "2", "86400"])
def test_lease_seconds_is_a_finite_span_from_3_s_to_an_hour(value: str) -> None:
    with pytest.raises(ConfigError, match="AZML_LEASE_SECONDS"):
        load_settings(_env_file=None, lease_seconds=value)
