"""amllib/data_profile.py: a data version's first rows and column profile, bounded however large the file."""

from __future__ import annotations

import json
from pathlib import Path

from amllib import data_profile
from amllib.data_profile import profile_folder
from amllib.settings import REPO_ROOT


def test_columns_are_typed_counted_and_bounded(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("ignored,later\n1,2\n")
    rows = ["id,price,city,empty,odd"] + [f"{i},{i * 0.5},c{i % 3},,{'NA' if i % 2 else 'x'}" for i in range(50)]
    rows += ["50,1e999,c\x001", "51"]  # an infinity is no min or max; a short row's missing cells are missing
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    found = profile_folder(tmp_path)
    assert (found["file"], found["rows_read"], found["complete"]) == ("a.csv", 52, True)
    columns = {c["name"]: c for c in found["columns"]}
    assert columns["id"] == {
        "name": "id",
        "type": "integer",
        "missing": 0,
        "distinct": 52,
        "distinct_capped": False,
        "min": 0,
        "max": 51,
    }
    assert (columns["price"]["type"], columns["price"]["min"], columns["price"]["max"]) == ("number", 0.0, 24.5)
    assert (columns["city"]["type"], columns["city"]["distinct"], columns["city"]["missing"]) == ("text", 4, 1)
    assert (columns["empty"]["type"], columns["empty"]["missing"]) == ("empty", 52)
    assert columns["odd"]["missing"] == 27  # 25 NA, and the two short rows
    assert found["preview"]["header"] == ["id", "price", "city", "empty", "odd"] and len(found["preview"]["rows"]) == 20
    json.dumps(found, allow_nan=False)  # stored and answered as JSON as it is


def test_a_large_file_is_read_only_up_to_its_bounds(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(data_profile, "PROFILE_ROWS", 1000)
    (tmp_path / "big.tsv").write_text("n\tm\n" + "".join(f"{i}\t{i}\n" for i in range(5000)))
    found = profile_folder(tmp_path)
    assert (found["rows_read"], found["complete"]) == (1000, False)
    monkeypatch.setattr(data_profile, "PROFILE_ROWS", 100_000)
    monkeypatch.setattr(data_profile, "READ_BYTES", 2000)
    found = profile_folder(tmp_path)
    assert found["complete"] is False and found["rows_read"] < 400


def test_what_has_no_table_says_why(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    assert profile_folder(tmp_path) == {"file": None, "why": "Parquet is not read (no Parquet engine is installed)"}
    (tmp_path / "x.parquet").unlink()
    (tmp_path / "notes.txt").write_text("hi")
    assert profile_folder(tmp_path)["why"] == "no CSV or TSV file in it"


def test_the_shipped_titanic_data(tmp_path: Path) -> None:
    found = profile_folder(REPO_ROOT / "data" / "titanic")
    assert found["complete"] and found["rows_read"] > 1000
    data_profile.save(found, tmp_path, "sha256:abc123")
    assert data_profile.load(tmp_path, "sha256:abc123") == found
    assert data_profile.load(tmp_path, "sha256:../../etc") is None
