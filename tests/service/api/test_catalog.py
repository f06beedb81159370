"""service/api/catalog.py: scripts with their own arguments, a data path's versions and a version's profile."""

from __future__ import annotations

from tests.service.conftest import assert_refused, upload


def test_a_data_paths_versions_their_runs_and_a_profile_of_each(make_app) -> None:
    client = make_app()
    first = upload(client, {"train.csv": b"age,fare,city\n22,7.25,Oslo\n38,,Bergen\n"}).json()
    run = client.post("/runs", params={"wait": 60}, json={}).json()
    second = upload(client, {"train.csv": b"age,fare,city\n1,2,x\n"}).json()
    history = client.get("/datastore/history", params={"path": "test-data"})
    assert history.status_code == 200, history.text
    versions = history.json()["versions"]
    assert [v["digest"] for v in versions] == [second["digest"], first["digest"]]  # newest first
    assert [v["current"] for v in versions] == [True, False]
    assert (versions[1]["runs"], versions[1]["newest_runs"], versions[0]["runs"]) == (1, [run["id"]], 0)
    assert versions[0]["uploaded_by"] and versions[0]["upload"] == second["id"] and versions[0]["profiled"]

    profile = client.get("/datastore/profile", params={"version": first["digest"]}).json()
    assert (profile["file"], profile["rows_read"], profile["complete"]) == ("train.csv", 2, True)
    fare = next(c for c in profile["columns"] if c["name"] == "fare")
    assert (fare["type"], fare["missing"], fare["min"], fare["max"]) == ("number", 1, 7.25, 7.25)
    assert profile["preview"]["rows"][0] == ["22", "7.25", "Oslo"]

    assert_refused(client.get("/datastore/profile", params={"version": "sha256:" + "0" * 64}), 404, "no profile")
    assert_refused(client.get("/datastore/history", params={"path": "nothing-here"}), 404, "no data")


def test_scripts_come_with_their_own_arguments_and_the_run_defaults(make_app) -> None:
    listed = make_app().get("/scripts").json()
    assert listed["defaults"]["script"] == "aml_v1_logging.py" and listed["backend"] == "local"
    slow = next(s for s in listed["scripts"] if s["name"] == "slow_accuracy.py")
    assert [a["name"] for a in slow["arguments"]] == ["estimators", "seconds"] and slow["arguments_error"] is None
