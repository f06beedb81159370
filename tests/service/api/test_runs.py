"""service/api/runs.py: POST /runs and reading a run."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from pathlib import Path

import httpx

from tests.service.conftest import FULL_TOKEN, READ_TOKEN, Service, assert_refused, tar_bytes, upload

TAR = {"Content-Type": "application/x-tar"}


def test_wait_on_the_hot_route_is_checked_like_everywhere(service: Service) -> None:
    with service.client() as client:
        for bad in ("-1", "3601", "nan", "inf", "soon"):
            response = client.get("/runs/anything", params={"wait": bad})
            assert response.status_code == 422 and response.json()["fields"] == ["wait"], bad
        assert client.get("/runs/anything", params={"wait": "0.1"}).status_code == 404


def test_uploads_racing_runs_on_one_path_never_take_a_runs_data(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        jobs: list[str] = []

        def keep_uploading() -> None:
            with service.client() as own:
                for index in range(12):
                    assert upload(own, {f"f{index}.csv": b"3,4\n" * 100}).status_code == 200

        uploader = threading.Thread(target=keep_uploading)
        uploader.start()
        for _ in range(12):
            jobs.append(client.post("/runs", json={"estimators": 1}).json()["id"])
        uploader.join()
        ends = [client.get(f"/runs/{job_id}", params={"wait": 120}).json() for job_id in jobs]
        assert [e["status"] for e in ends] == ["Completed"] * len(jobs), [e["error"] for e in ends]
        # Every replaced version was freed once its runs ended: only the current one is left.
        versions = Path(service.env["AZML_HOME"]) / "datastore" / ".versions"
        assert len([p for p in versions.iterdir() if len(p.name) == 32 and p.is_dir()]) == 1


def test_args_cannot_point_a_run_at_another_folder(service: Service) -> None:
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        for args in ({"data-path": "/etc"}, {"data_path": "/etc"}, {"data": "/etc"}, {"est": 5}):
            refused = client.post("/runs", json={"args": args})
            assert refused.status_code == 422, args
            assert "service sets itself" in refused.json()["detail"]
        job = client.post("/runs", params={"wait": 60}, json={"args": {"flavour": "--data-path=/etc"}}).json()
        assert job["status"] == "Completed"
        log = httpx.get(f"{service.url}/runs/{job['id']}/logs", headers={"Authorization": f"Bearer {FULL_TOKEN}"})
        assert "data files: ['a.csv']" in log.text


def test_the_metrics_of_several_runs_come_in_one_call_in_the_order_asked(make_app) -> None:
    client = make_app()
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    runs = []
    for estimators in (1, 2, 3):
        answer = client.post("/runs", params={"wait": 60}, json={"estimators": estimators})
        assert answer.json()["status"] == "Completed", answer.text
        runs.append(answer.json())
    queued = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": "30"}}).json()
    wanted = [runs[2]["backend_run_id"], runs[0]["id"], queued["id"]]  # a backend id, a job id, one not started
    body = client.get("/runs/metrics", params={"ids": ",".join(wanted)}).json()
    assert [run["id"] for run in body["runs"]] == [runs[2]["id"], runs[0]["id"], queued["id"]]
    assert body["runs"][0]["metrics"]["estimators"] == [3] and body["runs"][1]["metrics"]["estimators"] == [1]
    assert body["runs"][0]["metrics"]["accuracy"] == [0.5, 0.93]
    client.post(f"/runs/{queued['id']}/cancel")
    assert_refused(client.get("/runs/metrics", params={"ids": f"{runs[0]['id']},run_nope"}), 404, "run_nope")
    assert_refused(client.get("/runs/metrics", params={"ids": ",".join(f"r{i}" for i in range(11))}), 422, "1 to 10")
    assert_refused(client.get("/runs/metrics", params={"ids": " , "}), 422, "0 runs")
    assert client.get("/runs/metrics").status_code == 422  # ids is required


def test_runs_sort_by_a_metric_page_by_page_and_bad_sorts_are_named(make_app) -> None:
    client = make_app()
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    ids = {}
    for estimators in (2, 5, 1):
        answer = client.post("/runs", params={"wait": 60}, json={"estimators": estimators})
        assert answer.json()["status"] == "Completed", answer.text
        ids[estimators] = answer.json()["id"]
    queued = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": "30"}}).json()

    def every(**params: str) -> list[str]:
        seen, cursor = [], None
        while True:
            body = client.get("/runs", params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})})
            assert body.status_code == 200, body.text
            seen += [run["id"] for run in body.json()["items"]]
            cursor = body.json()["next_cursor"]
            if cursor is None:
                return seen

    by_estimators = [ids[5], ids[2], ids[1]]
    assert every(sort="metrics.estimators") == [*by_estimators, queued["id"]]  # no value: last
    assert every(sort="metrics.estimators", order="asc") == [*by_estimators[::-1], queued["id"]]
    assert every() == [queued["id"], ids[1], ids[5], ids[2]]  # newest first, as always
    assert every(sort="created", order="asc") == [ids[2], ids[5], ids[1], queued["id"]]
    assert set(every(sort="duration")) == {*ids.values(), queued["id"]}
    assert every(sort="started")[0] in (queued["id"], ids[1])  # started last, or not yet (then: accepted last)
    client.post(f"/runs/{queued['id']}/cancel")
    assert_refused(client.get("/runs", params={"sort": "accuracy"}), 422, "sort")
    assert_refused(client.get("/runs", params={"sort": "metrics."}), 422, "sort")
    assert_refused(client.get("/runs", params={"order": "up"}), 422, "order")
    sorted_cursor = client.get("/runs", params={"sort": "duration", "limit": 1}).json()["next_cursor"]
    assert_refused(client.get("/runs", params={"cursor": sorted_cursor}), 422, "cursor")  # another order's
    for bad in ("1e400~3", "nan~3", "x~3", "~", "1~-3"):
        assert_refused(client.get("/runs", params={"sort": "duration", "cursor": bad}), 422, "cursor")


def test_a_runs_outputs_are_listed_and_downloaded_once_it_has_ended(make_app) -> None:
    client = make_app()
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    done = client.post("/runs", params={"wait": 60}, json={"args": {"flavour": "salty"}}).json()
    assert done["status"] == "Completed", done
    listed = client.get(f"/runs/{done['backend_run_id']}/outputs").json()  # by the id the scripts print, too
    assert listed["files"] == ["model.txt"] and listed["id"] == done["id"]
    archive = client.get(f"/runs/{done['id']}/outputs/archive")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/gzip"
    assert f"{done['backend_run_id']}-outputs.tar.gz" in archive.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        assert tar.getnames() == ["model.txt"] and tar.extractfile("model.txt").read() == b"salty"
    failed = client.post("/runs", params={"wait": 60}, json={"script": "fail.py"}).json()
    assert_refused(client.get(f"/runs/{failed['job']['id']}/outputs/archive"), 404, "wrote no files under outputs/")
    running = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": "30"}}).json()
    assert_refused(client.get(f"/runs/{running['id']}/outputs/archive"), 409, running["id"])
    assert_refused(client.get("/runs/run_nope/outputs/archive"), 404, "run_nope")
    assert_refused(client.get("/runs/run_nope/outputs"), 404, "run_nope")
    client.post(f"/runs/{running['id']}/cancel")


LINKING_SCRIPT = '''"""Publishes what is not its own: links and a hard link into AZML_HOME, beside one real file."""
import argparse
import os
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--data-path")
parser.add_argument("--estimators", type=int)
parser.add_argument("--whole", default="no")
args = parser.parse_args()
home = Path.cwd().parents[2]  # AZML_HOME/runs/<run>/work
if args.whole == "yes":
    os.symlink(home, "outputs")
else:
    os.makedirs("outputs/deep")
    Path("outputs/model.txt").write_text("mine")
    os.symlink(home / ".ui-session-key", "outputs/key")
    os.symlink(home, "outputs/home")
    os.symlink(home, "outputs/deep/up")
    os.link(home / ".ui-session-key", "outputs/hard-key")
'''


def test_outputs_that_are_links_to_elsewhere_are_never_listed_archived_or_registered(tmp_path: Path, make_app) -> None:
    """Issue 26, item 4: outputs/ (or a file in it) linked to AZML_HOME published the session key."""
    training = tmp_path / "training"
    training.mkdir()
    (training / "linker.py").write_text(LINKING_SCRIPT)
    client = make_app(training_dir=training, script="linker.py")
    key = (tmp_path / "aml" / ".ui-session-key").read_bytes()
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200

    mixed = client.post("/runs", params={"wait": 60}, json={}).json()
    assert mixed["status"] == "Completed", mixed
    assert client.get(f"/runs/{mixed['id']}/outputs").json()["files"] == ["model.txt"]
    archive = client.get(f"/runs/{mixed['id']}/outputs/archive")
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        assert tar.getnames() == ["model.txt"]
    version = mixed["model_version"]["version"]
    model = client.get(f"/models/svc-model/versions/{version}/archive")
    with tarfile.open(fileobj=io.BytesIO(model.content)) as tar:
        names = tar.getnames()
        assert "model.txt" in names and not any("key" in name or "home" in name for name in names), names
    assert key not in archive.content and key not in model.content

    whole = client.post("/runs", params={"wait": 60}, json={"args": {"whole": "yes"}}).json()
    assert whole["status"] == "Completed" and whole["model_version"] is None, whole  # nothing of its own
    assert client.get(f"/runs/{whole['id']}/outputs").json()["files"] == []
    assert_refused(client.get(f"/runs/{whole['id']}/outputs/archive"), 404, "wrote no files")


def test_archives_are_streamed_staged_once_under_azml_home_and_capped(tmp_path: Path, make_service) -> None:
    """Issue 26, item 8: each download built a whole tar.gz in the system temp folder beside a copy, no cap."""
    from service.api.archives import MAX_AT_ONCE, STAGING

    temp = tmp_path / "system-temp"
    temp.mkdir()
    service = make_service(AZML_SCRIPT="big_outputs.py", TMPDIR=str(temp))
    home = Path(service.env["AZML_HOME"])
    with service.client() as client:
        assert upload(client, {"a.csv": b"1"}).status_code == 200
        run = client.post("/runs", params={"wait": 90}, json={"args": {"megabytes": "24"}}).json()
        assert run["status"] == "Completed", run
        path = f"/runs/{run['id']}/outputs/archive"
        held = [client.stream("GET", path) for _ in range(MAX_AT_ONCE)]
        answers = [stream.__enter__() for stream in held]  # headers read, bodies left unread: all four are sending
        try:
            assert all(answer.status_code == 200 for answer in answers)
            assert all("content-length" not in answer.headers for answer in answers)  # streamed, not a file
            staged = list((home / STAGING).iterdir())
            assert len(staged) == MAX_AT_ONCE
            assert not [p for p in home.rglob("*") if p.name.endswith((".tar.gz", ".tgz"))]  # no archive on disk
            assert list(temp.iterdir()) == []
            busy = client.get(path)
            assert busy.status_code == 503 and busy.headers["retry-after"], busy.text
            assert busy.json()["error"] == "busy"
            whole = answers[0].read()
        finally:
            for stream in held:
                stream.__exit__(None, None, None)
        with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
            assert tar.getnames() == ["weights.bin"] and len(tar.extractfile("weights.bin").read()) == 24 << 20
        deadline = time.time() + 10
        while list((home / STAGING).iterdir()) and time.time() < deadline:
            time.sleep(0.05)
        assert list((home / STAGING).iterdir()) == []  # every staging folder went with its answer, cut off or not
        assert client.get(path).status_code == 200


def test_a_run_started_elsewhere_is_found_by_its_id_before_the_importer_looks(make_app) -> None:
    """Issue 26, item 15: the link run-training.py prints answered 404 until the next import pass (10 s)."""
    from amllib.backends import get_backend
    from amllib.backends.base import RunSpec

    client = make_app(run_import_seconds=3600)  # one pass at start, the next in an hour
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    services = client.app.state.services
    script_backend = get_backend(services.settings)  # what run-training.py does: the backend, not the service
    run_id = script_backend.submit_run(
        RunSpec(script="aml_v1_logging.py", experiment="svc", datapath="test-data", compute="local-cluster")
    )
    found = client.get(f"/runs/{run_id}")
    assert found.status_code == 200, found.text
    assert found.json()["backend_run_id"] == run_id and found.json()["imported"] is True
    ended = client.get(f"/runs/{found.json()['id']}", params={"wait": 60}).json()
    assert ended["status"] == "Completed" and ended["metrics"]["accuracy"] == 0.93
    assert client.get("/runs", params={"q": run_id}).json()["items"][0]["id"] == found.json()["id"]  # once
    assert len(client.get("/runs", params={"q": run_id}).json()["items"]) == 1
    assert_refused(client.get("/runs/svc_0_nope"), 404, "svc_0_nope")


def test_a_run_is_named_described_tagged_found_by_its_name_and_archived(make_app) -> None:
    client = make_app()
    assert upload(client, {"a.csv": b"1,2\n"}).status_code == 200
    first = client.post("/runs", params={"wait": 60}, json={}).json()
    second = client.post("/runs", params={"wait": 60}, json={}).json()
    run_id = first["id"]
    assert (first["name"], first["description"], first["tags"], first["archived"]) == (None, None, {}, False)

    named = client.patch(f"/runs/{run_id}", json={"name": "  baseline v2 ", "tags": {"team": "fraud", "try": 3}})
    assert named.status_code == 200, named.text
    assert (named.json()["name"], named.json()["tags"]) == ("baseline v2", {"team": "fraud", "try": "3"})
    described = client.patch(f"/runs/{first['backend_run_id']}", json={"description": "the one to beat"}).json()
    assert (described["name"], described["description"]) == ("baseline v2", "the one to beat")  # merged, not replaced
    assert client.get(f"/runs/{run_id}").json()["description"] == "the one to beat"  # the poll sees the change
    found = client.get("/runs", params={"q": "baseline v2"}).json()["items"]
    assert [run["id"] for run in found] == [run_id]

    assert client.patch(f"/runs/{run_id}", json={"archived": True}).json()["archived"] is True
    listed = [run["id"] for run in client.get("/runs").json()["items"]]
    assert run_id not in listed and second["id"] in listed
    assert [run["id"] for run in client.get("/runs", params={"archived": "true"}).json()["items"]] == [run_id]
    assert [run["id"] for run in client.get("/runs", params={"ids": run_id}).json()["items"]] == [run_id]
    assert client.get(f"/runs/{run_id}").json()["model_version"] == first["model_version"]  # nothing removed
    cleared = client.patch(f"/runs/{run_id}", json={"archived": False, "name": "", "tags": {}}).json()
    assert (cleared["archived"], cleared["name"], cleared["tags"]) == (False, None, {})
    assert run_id in [run["id"] for run in client.get("/runs").json()["items"]]

    assert_refused(client.patch(f"/runs/{run_id}", json={"name": "a\nb"}), 422, "name")
    assert_refused(client.patch(f"/runs/{run_id}", json={"owner": "me"}), 422, "owner")
    assert_refused(client.patch(f"/runs/{run_id}", json={"tags": {"k": "v" * 5000}}), 422, "tags")
    assert_refused(client.patch("/runs/no_such_run", json={"name": "x"}), 404, "not found")
    reader = client.patch(f"/runs/{run_id}", json={"name": "x"}, headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert reader.status_code == 403


def test_runs_are_filtered_and_sorted_by_their_parameters(make_app) -> None:
    client = make_app()
    assert upload(client, {"a.csv": b"1,2\n"}).status_code == 200
    made = {}
    for estimators, seed in ((30, "7"), (5, "8"), (12, "7")):
        job = client.post("/runs", json={"estimators": estimators, "args": {"seed": seed}})  # the script refuses
        made[estimators] = job.json()["id"]  # --seed: a failed run has its parameters all the same
    listed = client.get("/runs", params={"params.seed": "7"}).json()["items"]
    assert [run["id"] for run in listed] == [made[12], made[30]]
    both = client.get("/runs", params={"params.seed": "7", "params.estimators": "30"}).json()["items"]
    assert [run["id"] for run in both] == [made[30]]
    ordered = client.get("/runs", params={"sort": "params.estimators", "order": "asc", "limit": 2}).json()
    assert [run["id"] for run in ordered["items"]] == [made[5], made[12]]
    rest = client.get("/runs", params={"sort": "params.estimators", "order": "asc", "cursor": ordered["next_cursor"]})
    assert [run["id"] for run in rest.json()["items"]] == [made[30]]
    assert client.get("/runs", params={"params.seed": "9"}).json()["items"] == []
    assert_refused(client.get("/runs", params={"sort": "params."}), 422, "params.<parameter name>")
    assert_refused(client.get("/runs", params={"params.": "x"}), 422, "params.")
    many = {f"params.p{i}": "1" for i in range(11)}
    assert_refused(client.get("/runs", params=many), 422, "at most 10")
