"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): what a person would do and see.

Screenshots go to test-artifacts/screenshots/ at the top of the repository.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from amllib.settings import REPO_ROOT
from tests.conftest import run_script
from tests.service.conftest import FULL_TOKEN, READ_TOKEN, Service, upload

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed for the dashboard tests: ./test.sh installs it (apt-get)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def dashboard(make_service) -> Service:
    service = make_service(AZML_RUN_IMPORT_SECONDS="0.5", AZML_SCRIPT="slow_accuracy.py")
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
    return service


class Page:
    """One browser tab on the dashboard, recording every address it loads."""

    def __init__(self, browser, service: Service, *, width: int = 1200) -> None:
        self.service = service
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.set_default_timeout(TIMEOUT)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def login(self, token: str) -> None:
        self.page.goto(self.service.url + "/")
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/ui/")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        outside = [url for url in self.requests if not url.startswith(self.service.url)]
        assert outside == [], f"the page loaded from outside the service: {outside}"
        assert self.errors == [], self.errors
        self.context.close()


def test_a_full_token_trains_watches_and_finds_the_model(browser, dashboard: Service, tmp_path: Path) -> None:
    tab = Page(browser, dashboard)
    page = tab.page
    tab.login(FULL_TOKEN)
    page.evaluate("window.notReloaded = true")
    assert page.locator("#runs td.hint").inner_text() == "No runs yet."

    # A run started elsewhere appears in the open list and reaches Completed with its accuracy, live.
    with dashboard.client() as client:
        started = client.post("/runs", json={"args": {"seconds": 2}}).json()
    row = page.locator(f'#runs tr[data-id="{started["id"]}"]')
    row.locator('[data-status="Completed"]').wait_for()
    assert row.locator('td[data-metric="accuracy"]').inner_text() == "0.8100"
    assert page.evaluate("window.notReloaded") is True
    tab.shot("runs")

    # Train from the form: it lands on the new run's live page, its log streaming while it runs.
    page.click("a.train-link")
    assert page.locator("#script option").first.inner_text() == "(the service's default: slow_accuracy.py)"
    assert page.get_attribute("#experiment", "placeholder") == "the service's default: svc"
    assert page.get_attribute("#compute", "placeholder") == "the service's default: local-cluster"
    seconds = page.locator("#script-arguments tr[data-argument=seconds] td")  # the script's own, read from it
    assert seconds.all_inner_texts()[:3] == ["seconds", "float", "3"]
    page.select_option("#script", "fail.py")
    page.locator("#script-args", has_text="fail.py").wait_for()
    page.select_option("#script", "slow_accuracy.py")
    page.select_option("#datapath", "test-data")
    page.fill("#estimators", "5")
    page.fill("#args", "seconds=4")
    page.click("button.primary")
    page.wait_for_url("**/ui/runs/run_*")
    trained = page.url.rsplit("/", 1)[1]
    page.locator("#log").filter(has_text="epoch 1 of 8").wait_for()
    page.locator('#run-status [data-status="Running"]').wait_for()

    # Back on the list while it runs: its row reaches Completed with its accuracy, no reload.
    page.click("header a[href='/ui/']")
    page.evaluate("window.notReloaded = true")
    row = page.locator(f'#runs tr[data-id="{trained}"]')
    row.locator('[data-status="Running"]').wait_for()
    row.locator('[data-status="Completed"]').wait_for()
    assert row.locator('td[data-metric="accuracy"]').inner_text() == "0.8100"
    assert page.evaluate("window.notReloaded") is True

    # Its page: the whole log, a chart per metric, its arguments.
    row.locator("a").first.click()
    page.locator('#run-status [data-status="Completed"]').wait_for()
    page.locator("#log").filter(has_text="done").wait_for()
    page.locator('#single-metrics dd[data-metric="accuracy"]', has_text="0.8100").wait_for()  # logged once: a number
    assert page.locator('#charts figure[data-metric="accuracy"]').count() == 0
    page.locator('#charts figure[data-metric="loss"] svg circle').first.wait_for()
    assert "--seconds=4" in page.locator("dl.facts").inner_text()
    tab.shot("run")

    # The model page lists the new version, best marked, its run a working link.
    page.click("dl.facts a[href^='/ui/models/']")
    page.locator("#versions tbody tr").nth(1).wait_for()
    assert page.locator("#versions tr.best").count() == 1
    tab.shot("model")
    page.locator("#versions tbody tr").first.locator("a.run-link").click()
    page.locator('#run-status [data-status="Completed"]').wait_for()

    # A long run is canceled from its page.
    with dashboard.client() as client:
        long = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": 60}}).json()
    page.goto(f"{dashboard.url}/ui/runs/{long['id']}")
    page.locator('#run-status [data-status="Running"]').wait_for()
    page.click("#cancel")
    page.locator('#run-status [data-status="Canceled"]').wait_for()

    # A run of scripts/run-training.py shows in the list; the data page shows the upload and its runs.
    done = run_script("run-training.py", "--arg", "seconds=0.5", env=dashboard.env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page.goto(f"{dashboard.url}/ui/")
    page.locator("#runs td", has_text="run-training.py (").wait_for()
    page.goto(f"{dashboard.url}/ui/data")
    page.locator("#paths td", has_text="test-data").wait_for()
    tab.shot("data")
    page.click("#paths a")
    page.locator("#runs tbody tr").nth(2).wait_for()
    tab.close()


def test_a_read_token_sees_everything_but_cannot_train_or_cancel(browser, dashboard: Service) -> None:
    with dashboard.client() as client:
        running = client.post("/runs", json={"script": "sleep_and_record.py", "args": {"seconds": 30}}).json()
    tab = Page(browser, dashboard, width=390)  # a phone
    page = tab.page
    tab.login(READ_TOKEN)
    page.locator(f'#runs tr[data-id="{running["id"]}"]').wait_for()
    assert page.locator("a.train-link").count() == 0
    page.goto(f"{dashboard.url}/ui/runs/{running['id']}")
    page.locator('#run-status [data-status="Running"]').wait_for()
    assert page.locator("#cancel").count() == 0
    tab.shot("read-only-phone")
    refused = page.evaluate(
        """async () => (await fetch('/runs', {method: 'POST', headers: {'Content-Type': 'application/json',
             'X-CSRF-Token': document.querySelector('meta[name=csrf]').content}, body: '{}'})).status"""
    )
    assert refused == 403
    tab.close()
    with dashboard.client() as client:
        client.post(f"/runs/{running['id']}/cancel")


def test_login_refuses_a_wrong_token_and_cookie_writes_need_the_csrf_token(browser, dashboard: Service) -> None:
    tab = Page(browser, dashboard)
    page = tab.page
    page.goto(dashboard.url + "/ui/models")
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    assert "not one this service accepts" in page.locator(".error").inner_text()
    page.fill("#token", FULL_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/models")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "azml_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    without_csrf = page.evaluate("async () => (await fetch('/runs', {method: 'POST', body: '{}'})).status")
    assert without_csrf == 403
    tab.close()


def test_a_metric_of_210k_values_still_draws_with_live_status_and_log(browser, dashboard: Service) -> None:
    """Math.min(...xs) overflowed the stack past ~100k values, and the page then got no status and no log."""
    with dashboard.client() as client:
        run = client.post("/runs", params={"wait": 90}, json={"script": "big_metric.py"}).json()
    assert run["status"] == "Completed", run
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    tab.page.goto(f"{dashboard.url}/ui/runs/{run['id']}")
    tab.page.wait_for_selector('figure[data-metric="loss"] svg polyline')
    assert "210000" in tab.page.inner_text('figure[data-metric="loss"] figcaption')
    points = tab.page.get_attribute('figure[data-metric="loss"] polyline', "points").split()
    assert 2 <= len(points) <= 1000
    tab.page.wait_for_selector("#run-status [data-status=Completed]")
    tab.page.wait_for_selector("#log:has-text('trained')")
    tab.shot("run-big-metric")
    tab.close()


def test_a_page_whose_session_ended_says_so_instead_of_going_quiet(browser, dashboard: Service) -> None:
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    tab.page.wait_for_selector("#live.on")
    # Signed out elsewhere (another tab): the server revokes the session and closes its streams;
    # the browser's reconnect is refused with 401, which ends the EventSource for good.
    tab.page.evaluate("async () => { await fetch('/ui/logout', {redirect: 'manual'}); }")
    tab.page.wait_for_selector("#stopped:has-text('Sign in again')", timeout=20_000)
    tab.shot("runs-session-ended")
    tab.errors.clear()  # the refused reconnect is logged by the browser as a failed resource
    tab.close()


def test_the_id_the_scripts_print_finds_the_run(browser, dashboard: Service, tmp_path: Path) -> None:
    done = run_script("run-training.py", "--arg", "seconds=0.5", env=dashboard.env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = next(line for line in done.stdout.splitlines() if line.startswith("### Run ")).split()[2]
    with dashboard.client() as client:  # another run, which the search must leave out
        client.post("/runs", params={"wait": 60}, json={})
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.locator("#runs td.backend-id", has_text=printed).wait_for()  # shown in full on the list
    page.fill("#search", printed[:16])
    page.press("#search", "Enter")
    page.wait_for_url(f"**q={printed[:16]}**")
    page.locator("#runs td.backend-id", has_text=printed).wait_for()
    assert page.locator("#runs tbody tr").count() == 1
    tab.shot("runs-search")
    assert page.title() == "Runs — AML control plane"
    page.goto(f"{dashboard.url}/ui/runs/{printed}")  # the run's page by the id the script printed
    page.locator("#run-status [data-status=Completed]").wait_for()
    assert page.title() == f"Run {printed} — AML control plane"  # the tab says what it shows
    missing = page.goto(f"{dashboard.url}/ui/no-such-page")
    assert missing is not None and missing.status == 404
    page.get_by_role("heading", name="Not found").wait_for()
    assert page.title() == "Not found — AML control plane"
    tab.close()


def test_a_run_named_tagged_and_archived_from_its_page(browser, dashboard: Service) -> None:
    with dashboard.client() as client:
        run = client.post("/runs", params={"wait": 60}, json={"args": {"seconds": "0.5"}}).json()
        other = client.post("/runs", params={"wait": 60}, json={"args": {"seconds": "0.5"}}).json()
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{dashboard.url}/ui/runs/{run['id']}")
    assert page.locator("#run-title").inner_text() == run["backend_run_id"]  # the id the list leads with
    page.click("#about-edit summary")
    page.fill("#run-name", "baseline")
    page.fill("#run-notes", "the one to beat")
    page.fill("#run-tag-text", "team=fraud, try=3")
    page.click("#save-about")
    page.locator("#run-description", has_text="the one to beat").wait_for()
    assert page.locator("#run-title").inner_text() == f'{run["backend_run_id"]} "baseline"'
    assert page.locator("#run-tags .tag").all_inner_texts() == ["team=fraud", "try=3"]
    page.goto(f"{dashboard.url}/ui/?q=baseline")
    page.locator("#runs .run-name", has_text="baseline").wait_for()
    assert page.locator("#runs tbody tr").count() == 1
    page.goto(f"{dashboard.url}/ui/runs/{run['id']}")
    page.click("#about-edit summary")
    page.click("#archive")
    page.locator("#archived-note").wait_for()
    page.goto(f"{dashboard.url}/ui/")
    page.locator(f"#runs tr[data-id='{other['id']}']").wait_for()
    assert page.locator(f"#runs tr[data-id='{run['id']}']").count() == 0  # archived: off the list
    tab.close()


def test_parameter_columns_are_picked_sorted_and_filter_the_list(browser, dashboard: Service) -> None:
    with dashboard.client() as client:
        made = {
            seconds: client.post("/runs", params={"wait": 60}, json={"args": {"seconds": seconds}}).json()["id"]
            for seconds in ("0.4", "0.2", "0.3")
        }
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.click("#param-columns summary")
    page.check("#param-columns input[value=seconds]")
    page.locator("#runs th", has_text="seconds").click()  # sorts by it (the URL holds it)
    page.wait_for_url("**sort=params.seconds**")
    page.locator("#runs td[data-param=seconds]").first.wait_for()
    column = page.locator("#runs td[data-param=seconds]").all_inner_texts()
    assert column[:3] in (["0.4", "0.3", "0.2"], ["0.2", "0.3", "0.4"]), column
    page.locator("#runs td[data-param=seconds] a", has_text="0.3").click()  # only the runs with that value
    page.wait_for_url("**params.seconds=0.3**")
    page.locator("#param-filters").wait_for()
    assert page.locator("#runs tbody tr").count() == 1
    assert page.locator("#runs tbody tr").get_attribute("data-id") == made["0.3"]
    page.reload()  # the pick is remembered
    page.locator("#runs td[data-param=seconds]").first.wait_for()
    tab.close()


def test_the_live_dot_says_what_it_means_and_the_models_page_shows_a_new_version(browser, dashboard: Service) -> None:
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    for where in ("/ui/models", "/ui/data", "/ui/schedules", "/ui/approvals"):  # every page, not only the runs
        page.goto(dashboard.url + where)
        page.locator("#live[data-state=live]").wait_for()
        assert page.locator("#live .live-text").inner_text() == "live"
    page.goto(dashboard.url + "/ui/models")
    page.get_by_text("No model registered yet").wait_for()
    with dashboard.client() as client:
        client.post("/runs", params={"wait": 60}, json={"args": {"seconds": "0.5"}})
    page.locator("text=svc-model").first.wait_for()  # drawn again once the version was registered
    tab.close()


def test_a_table_wider_than_a_phone_says_so_and_scrolls_to_every_column(browser, dashboard: Service) -> None:
    with dashboard.client() as client:
        run = client.post("/runs", params={"wait": 60}, json={"args": {"seconds": "0.5"}}).json()
    tab = Page(browser, dashboard, width=390)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{dashboard.url}/ui/models/{run['model_version']['name']}")
    wrap = page.locator(".table-wrap", has=page.locator("#versions"))
    wrap.locator("a[download]").first.wait_for(state="attached")
    page.locator(".scroll-hint").first.wait_for()  # it says so
    assert wrap.get_attribute("tabindex") == "0"  # and the keyboard can scroll it
    download = wrap.locator("a[download]").first
    download.scroll_into_view_if_needed()
    box, frame = download.bounding_box(), wrap.bounding_box()
    assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1  # reached inside
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the page itself does not scroll
    page.set_viewport_size({"width": 1200, "height": 900})
    page.wait_for_timeout(400)
    assert page.locator(".scroll-hint").count() == 0  # wide enough: no hint
    tab.close()


def test_the_data_page_shows_every_version_of_a_path_and_previews_one(browser, dashboard: Service) -> None:
    with dashboard.client() as client:  # the fixture's upload, then a new version of the same path
        assert upload(client, {"train.csv": b"age,fare\n22,7.25\n38,\n"}).status_code == 200
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{dashboard.url}/ui/data")
    page.locator("#paths button.history").first.click()
    page.locator("#data-versions tbody tr").nth(1).wait_for()
    assert page.locator("#data-versions tbody tr").count() == 2
    assert "current" in page.locator("#data-versions tbody tr").first.inner_text()
    page.locator("#data-versions button.preview").first.click()
    page.locator("#data-columns tbody tr").first.wait_for()
    assert page.locator("#data-columns tbody tr").nth(1).inner_text().split("\t")[:3] == ["fare", "number", "1"]
    assert page.locator("#data-rows tbody tr").first.inner_text().split("\t") == ["22", "7.25"]
    tab.close()


def test_three_runs_sorted_by_a_picked_metric_then_side_by_side_their_differences_marked(
    browser, dashboard: Service
) -> None:
    settings = ((10, "1"), (20, "1.5"), (30, "0.5"))  # last loss: 0.5, 0.33, 1.0
    with dashboard.client() as client:
        runs = [
            client.post("/runs", params={"wait": 60}, json={"estimators": n, "args": {"seconds": s}}).json()
            for n, s in settings
        ]
    assert all(run["status"] == "Completed" for run in runs), runs
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    # Pick a metric column (remembered by the browser), then sort by it, both ways: the URL holds the sort.
    page.click("#columns summary")
    page.check('#columns input[value="loss"]')
    page.reload()
    header = page.locator("#runs thead a.sort", has_text="loss")
    header.click()
    page.wait_for_url("**sort=metrics.loss**")

    def ids(expected: list[str]) -> list[str]:
        """The list's run ids, once the page has drawn these (a new URL's list is read after it loads)."""
        listed = "rows => rows.map(r => r.dataset.id).join(',')"
        with contextlib.suppress(playwright.TimeoutError):
            page.wait_for_function(
                f"() => [...document.querySelectorAll('#runs tbody tr[data-id]')].map(r => r.dataset.id).join(',')"
                f" === {json.dumps(','.join(expected))}",
                timeout=TIMEOUT,
            )
        return page.eval_on_selector_all("#runs tbody tr[data-id]", listed).split(",")

    assert ids([runs[2]["id"], runs[0]["id"], runs[1]["id"]]) == [runs[2]["id"], runs[0]["id"], runs[1]["id"]]
    assert page.locator('#runs th[aria-sort="descending"]').inner_text().startswith("loss")
    page.locator("#runs thead a.sort", has_text="loss").click()
    page.wait_for_url("**order=asc**")
    assert ids([runs[1]["id"], runs[0]["id"], runs[2]["id"]]) == [runs[1]["id"], runs[0]["id"], runs[2]["id"]]
    assert page.locator('#runs tr td[data-metric="loss"]').first.inner_text() == "0.3333"
    tab.shot("runs-sorted")
    page.goto(f"{dashboard.url}/ui/")
    assert page.locator("#compare").is_disabled()  # nothing ticked yet
    for run in runs:
        page.check(f'#runs tr[data-id="{run["id"]}"] input.pick')
    page.click("#compare")
    page.wait_for_url("**/ui/compare?ids=**")
    assert set(page.url.split("ids=")[1].split(",")) == {run["id"] for run in runs}  # a URL to paste in a chat
    page.locator("#compare-table").wait_for()
    row = page.locator("#compare-table tr[data-row]")
    differs = {row.nth(i).get_attribute("data-row"): row.nth(i).get_attribute("class") for i in range(row.count())}
    assert differs["Estimators"] == "differs" and differs["--seconds"] == "differs"
    assert differs["Script"] == "" and differs["Experiment"] == ""
    loss = page.locator('#compare-charts figure[data-metric="loss"]')
    assert loss.locator("[data-run]").count() == 3  # one line per run (a dot for one value), on common axes
    assert loss.locator("ul.legend li").count() == 3
    assert page.title() == "Compare runs — AML control plane"
    page.check("#only-differ")  # the rows every run agrees on go
    assert not page.locator('#compare-table tr[data-row="Script"]').is_visible()
    assert page.locator('#compare-table tr[data-row="Estimators"]').is_visible()
    # A parameter against a metric: the one that differs across, accuracy up; one dot a run.
    assert page.input_value("#against-x") == "params.estimators"
    assert page.input_value("#against-y") == "metrics.accuracy"
    page.select_option("#against-x", "params.seconds")
    page.select_option("#against-y", "metrics.loss")
    dots = page.locator("#against-plot circle[data-run]")
    assert dots.count() == 3
    assert "metrics.loss against params.seconds: 3 of 3 runs" in page.inner_text("#against-plot figcaption")
    with dashboard.client() as client:  # another run of the experiment, not among the compared
        client.post("/runs", params={"wait": 60}, json={"estimators": 40, "args": {"seconds": "0.2"}})
    page.click("#against-experiment")
    page.locator("#against-plot figcaption", has_text="of 4 runs").wait_for()
    together = page.locator("#parallel-plot polyline[data-run]")  # parallel coordinates: a line a run
    assert together.count() == 4
    assert "estimators" in page.locator("#parallel-plot").inner_text()
    tab.shot("compare")
    tab.close()
    phone = Page(browser, dashboard, width=390)  # a link pasted in a chat, opened on a phone
    phone.login(FULL_TOKEN)
    phone.page.goto(f"{dashboard.url}/ui/compare?ids={','.join(run['id'] for run in runs)}")
    phone.page.locator("#compare-charts figure").first.wait_for()
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing cut off the page
    phone.shot("compare-phone")
    phone.close()


def test_a_run_page_sums_up_its_metrics_pauses_its_log_and_runs_again_with_its_settings(
    browser, dashboard: Service
) -> None:
    with dashboard.client() as client:
        run = client.post("/runs", params={"wait": 60}, json={"estimators": 7, "args": {"seconds": "1"}}).json()
    assert run["status"] == "Completed", run
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{dashboard.url}/ui/runs/{run['id']}")
    loss = page.locator('#metrics-table tr[data-metric="loss"] td')
    loss.first.wait_for()
    assert [loss.nth(i).inner_text() for i in range(4)] == ["0.5000", "0.5000", "1", "2"]  # last, min, max, count
    with page.expect_download() as download:  # the run's outputs/, with the cookie the page signed in with
        page.click("#download-outputs")
    assert download.value.suggested_filename == f"{run['backend_run_id']}-outputs.tar.gz"
    with tarfile.open(download.value.path()) as tar:
        assert tar.getnames() == ["model.txt"] and tar.extractfile("model.txt").read() == b"slow"
    assert page.locator("#outputs li").all_inner_texts() == ["model.txt"]
    assert page.locator("#studio").count() == 0  # a local run has no Azure ML studio page
    assert page.locator("#follow").get_attribute("aria-pressed") == "true"
    page.click("#follow")
    assert page.locator("#follow").get_attribute("aria-pressed") == "false"
    tab.shot("run-actions")
    page.click("#again")
    page.wait_for_url("**/ui/train?from=**")
    page.locator("#estimators").wait_for()
    assert page.input_value("#estimators") == "7" and page.input_value("#args") == "seconds=1"
    assert page.input_value("#script") == "slow_accuracy.py"
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/ui/runs/" in url and run["id"] not in url)
    again = page.url.rsplit("/", 1)[1]
    with dashboard.client() as client:
        made = client.get(f"/runs/{again}").json()
    assert made["params"] == run["params"] and made["script"] == run["script"]
    tab.close()


AXE = REPO_ROOT / "tests" / "lint" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .filter((v) => v.impact === 'serious' || v.impact === 'critical')
  .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`)"""


def test_every_page_is_accessible_and_whole_at_phone_width_light_and_dark(browser, dashboard: Service) -> None:
    """axe-core (from npm, injected into each page) finds no serious or critical violation on any page,
    at desktop and phone width, light and dark; at 390 px nothing is cut off; screenshots of each."""
    with dashboard.client() as client:
        runs = [client.post("/runs", params={"wait": 60}, json={"estimators": n}).json() for n in (1, 2)]
        served = {"script": "contract_model.py", "model": "titanic-model"}
        assert client.post("/runs", params={"wait": 120}, json=served).json()["status"] == "Completed"
        weekly = {"name": "weekly", "trigger": {"cron": "0 3 * * 1"}, "promote": {"alias": "staging"}, "paused": True}
        assert client.post("/schedules", json=weekly).status_code == 201
        deployed = {"endpoint": "titanic", "model": "titanic-model", "version": 1}
        assert client.post("/deployments", params={"wait": 120}, json=deployed).json()["status"] == "Completed"
    model = runs[0]["model_version"]["name"]
    pages = {
        "runs": ("/ui/", "#runs tbody tr"),
        "run": (f"/ui/runs/{runs[0]['id']}", "#download-outputs"),
        "compare": (f"/ui/compare?ids={runs[0]['id']},{runs[1]['id']}", "#compare-charts figure"),
        "models": ("/ui/models", "main h1"),
        "model": (f"/ui/models/{model}", "main h1"),
        "data": ("/ui/data", "main h1"),
        "train": ("/ui/train", "#estimators"),
        "approvals": ("/ui/approvals", "main h1"),
        "endpoints": ("/ui/endpoints", "#endpoints tbody tr"),
        "endpoint": ("/ui/endpoints/titanic", "#try select"),
        "schedules": ("/ui/schedules", "#schedules tbody tr"),
        "not-found": ("/ui/no-such-page", "main h1"),
    }
    assert AXE.is_file(), "axe-core is installed by test.sh (npm, tests/lint)"
    problems: dict[str, list[str]] = {}
    for width, scheme in ((1200, "light"), (390, "light"), (390, "dark")):
        # The service's CSP lets only its own scripts run; the test's injected axe needs it bypassed.
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme, bypass_csp=True)
        context.set_default_timeout(TIMEOUT)
        page = context.new_page()
        page.goto(dashboard.url + "/ui/login")
        page.locator("#token").wait_for()
        page.add_script_tag(path=str(AXE))
        problems[f"login {width} {scheme}"] = page.evaluate(AXE_RUN)
        page.fill("#token", FULL_TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/")
        for name, (path, ready) in pages.items():
            page.goto(dashboard.url + path)
            page.locator(ready).first.wait_for()
            page.wait_for_timeout(300)  # the rest of the page's reads
            page.add_script_tag(path=str(AXE))
            problems[f"{name} {width} {scheme}"] = page.evaluate(AXE_RUN)
            text = page.inner_text("body")
            leaked = re.findall(r"\b(?:null|undefined|NaN)\b", text)
            assert not leaked, f"{name} shows {leaked} (a value the script wrote as text): {text[:400]}"
            if width == 390:
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= 390, f"{name} is {wide} px wide on a 390 px phone: something is cut off"
            if scheme == "light":
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"page-{name}-{width}.png"), full_page=True)
        context.close()
    found = {where: issues for where, issues in problems.items() if issues}
    assert not found, found


def test_the_models_page_shows_each_model_at_a_glance(browser, dashboard: Service) -> None:
    with dashboard.client() as client:
        for estimators in (3, 5):
            body = {"estimators": estimators, "args": {"seconds": "0.5"}}
            assert client.post("/runs", params={"wait": 60}, json=body).json()["model_version"]
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{dashboard.url}/ui/models")
    row = page.locator('#models tr[data-model="svc-model"]')
    row.wait_for()
    assert row.locator("td.count").inner_text() == "2"
    assert row.locator("td.best").inner_text() == "v2 ★ 0.8100"  # a tie goes to the newer version
    assert row.locator("td.latest").inner_text() == "v2 (0.8100)"
    assert "v1 0.81, v2 0.81" in row.locator("svg.sparkline").get_attribute("aria-label")
    tab.shot("models")
    row.get_by_role("link", name="svc-model").click()
    page.wait_for_url("**/ui/models/svc-model")
    page.locator("tr.best[data-version='2']").wait_for()  # the model's own page marks the same best
    # Two versions side by side: the best is the latest here, so the one before it is set beside it.
    compared = page.locator("#versions-compared tr[data-row]")
    compared.first.wait_for()
    rows = {compared.nth(i).get_attribute("data-row"): compared.nth(i) for i in range(compared.count())}
    assert rows["Estimators"].get_attribute("class") == "differs"
    assert rows["Estimators"].locator("td").all_inner_texts() == ["3", "5"]
    assert rows["Run"].get_attribute("class") == "differs" and rows["Script"].get_attribute("class") == ""
    assert rows["Accuracy"].get_attribute("class") == ""  # 0.81 both
    assert page.url.endswith("?a=1&b=2")  # the pair is in the URL, to share
    page.select_option("#version-a", "2")
    page.wait_for_url("**?a=2&b=2")
    page.locator('#versions-compared tr[data-row="Estimators"]:not(.differs)').wait_for()
    page.goto(f"{dashboard.url}/ui/models/svc-model?a=1&b=2")
    page.locator('#versions-compared tr.differs[data-row="Estimators"]').wait_for()
    tab.shot("model-compare")
    page.click("#compare-runs")  # on to the runs side by side: each logged its metrics once, so no curves
    page.locator("#compare-charts p.hint", has_text="logged more than once").wait_for()
    assert page.locator("#compare-charts figure").count() == 0
    page.locator("#against-plot circle[data-run]").nth(1).wait_for()  # but a dot a run, estimators across
    tab.close()


def test_a_folder_uploaded_from_the_data_page_shows_its_progress_and_data_version(
    browser, dashboard: Service, tmp_path: Path
) -> None:
    folder = tmp_path / "picked" / "titanic"
    (folder / "sub").mkdir(parents=True)
    (folder / "train.csv").write_bytes(b"a,b\n" + b"1,2\n" * 200_000)  # ~800 KB: progress has something to show
    (folder / "sub" / "notes.txt").write_text("hello")
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{dashboard.url}/ui/data")
    page.fill("#upload-path", "from-the-page")
    page.set_input_files("#upload-folder", folder)
    page.locator("#upload-version").wait_for()
    assert page.locator("#upload-progress").is_visible()
    assert page.evaluate("document.getElementById('upload-progress').value") == page.evaluate(
        "document.getElementById('upload-progress').max"
    )
    shown = page.locator("#upload-version").inner_text()
    with dashboard.client() as client:
        stored = {p["path"]: p for p in client.get("/datastore").json()["paths"]}["from-the-page"]
    assert stored["digest"] == shown and stored["files"] == 2  # the folder's contents, not the folder itself
    page.locator("#paths td", has_text="from-the-page").wait_for()  # the lists are drawn again
    assert page.locator("#upload-version").inner_text() == shown  # and the answer stays in view
    tab.shot("data-upload")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"this is not a zip archive")
    page.set_input_files("#upload-files", broken)
    page.locator("#upload-status .error").wait_for()
    assert "422" in page.locator("#upload-status").inner_text()  # a refusal, in words
    tab.close()


def test_a_version_promoted_from_the_model_page_and_a_protected_move_approved_by_another(browser, make_service) -> None:
    """Issue 28 on the page: Promote shows the outcome in the API's words, badges and the history follow; a
    protected alias's move waits on the Approvals page, where another token's session approves it."""
    service = make_service(
        AZML_API_TOKENS=f"alice:{FULL_TOKEN},bob:bob-token-for-tests",
        AZML_SCRIPT="slow_accuracy.py",
        AZML_PROTECTED_ALIASES="production",
        AZML_ALIAS_GATES="staging=accuracy:max:0.01",
    )
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        for estimators in (3, 5):
            body = {"estimators": estimators, "args": {"seconds": "0.2"}}
            assert client.post("/runs", params={"wait": 60}, json=body).json()["model_version"]
    tab = Page(browser, service)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{service.url}/ui/models/svc-model")
    page.fill("#promote-alias", "staging")
    page.select_option("#promote-version", "1")
    page.fill("#promote-reason", "first look")
    page.locator("#promote-sides", has_text="nobody").wait_for()  # the verdict before asking: no holder yet
    page.click("#promote")
    page.locator("#promote-outcome", has_text="svc-model@staging is now v1").wait_for()
    page.locator("tr[data-version='1'] .alias[data-alias='staging']").wait_for()  # the page drew itself again
    assert "staging set to v1 by alice" in page.locator("#alias-history").inner_text()
    page.fill("#promote-alias", "staging")  # the page drew itself again: a new form
    page.select_option("#promote-version", "2")  # as good as v1: the staging gate wants 0.01 more
    page.locator("#promote-verdict", has_text="The gate refuses this move").wait_for()
    assert "0.81" in page.locator("#promote-sides").inner_text() and page.locator("#promote").is_disabled()
    page.fill("#promote-alias", "production")
    page.locator("#promote", has_text="Ask for approval").wait_for()
    page.click("#promote")
    page.locator("#promote-outcome", has_text="is protected: approval").wait_for()
    tab.shot("model-promote")
    tab.close()

    other = Page(browser, service)
    other.login("bob-token-for-tests")
    page = other.page
    page.goto(f"{service.url}/ui/approvals")
    row = page.locator("#approvals tbody tr").first
    row.wait_for()
    assert "alice" in row.inner_text() and "pending" in row.inner_text()
    row.locator("button.approve").click()
    page.locator("#approvals .status.approved").wait_for()
    other.shot("approvals")
    page.goto(f"{service.url}/ui/models/svc-model")
    page.locator("tr[data-version='2'] .alias[data-alias='production']").wait_for()
    assert "approved by bob" in page.locator("#alias-history").inner_text()
    other.close()


def test_the_endpoint_page_tries_a_request_and_rolls_back(browser, make_service) -> None:
    """Issue 29 on the page: versions, traffic and figures per slot, a request built from the model's own
    parameters answered by the live version, a rollback button that moves traffic back."""
    service = make_service(AZML_SCRIPT="contract_model.py", AZML_MODEL="titanic-model")
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        for _ in range(2):
            assert client.post("/runs", params={"wait": 120}, json={}).json()["status"] == "Completed"
        for version in (1, 2):
            body = {"endpoint": "titanic", "version": version}
            assert client.post("/deployments", params={"wait": 120}, json=body).json()["status"] == "Completed"
    tab = Page(browser, service)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{service.url}/ui/endpoints")
    row = page.locator('#endpoints tr[data-endpoint="titanic"]')
    row.wait_for()
    assert "titanic-model v2 100% (green)" in row.inner_text() and "up" in row.inner_text()
    row.locator("a").click()
    page.locator("#try select").wait_for()
    page.select_option("#try-Gender", "male")
    page.fill("#try-Age", "40")
    page.click("#try button[type=submit]")
    page.locator("#try-answer", has_text="200 from v2 (green)").wait_for()
    assert "survived_proba" in page.locator("#try-answer").inner_text()
    page.click("#rollback")
    page.locator("#rollback-outcome", has_text="Rolled back: v1 serves (blue).").wait_for()
    page.locator('#slots tr[data-slot="blue"]', has_text="100%").wait_for()  # the page drew itself again
    assert "rollback" in page.locator("#endpoint-history").inner_text()
    tab.shot("endpoint")
    assert tab.errors == []
    tab.close()


def test_the_schedules_page_shows_fires_and_pauses(browser, dashboard: Service) -> None:
    """Issue 30 on the page: each schedule's trigger, next fire and last fires with their runs; Pause and
    Resume; a run a schedule started names it."""
    with dashboard.client() as client:
        body = {"name": "often", "trigger": {"every": "2s"}, "run": {"args": {"seconds": "0.2"}}}
        assert client.post("/schedules", json=body).status_code == 201
        deadline = time.time() + 60
        while not [f for f in client.get("/schedules/often").json()["fires"] if f["status"] == "completed"]:
            assert time.time() < deadline
            time.sleep(0.3)
    tab = Page(browser, dashboard)
    tab.login(FULL_TOKEN)
    page = tab.page
    page.goto(f"{dashboard.url}/ui/schedules")
    row = page.locator('#schedules tr[data-schedule="often"]')
    row.wait_for()
    assert "every 2s" in row.inner_text() and "completed" in row.inner_text()
    row.locator("button.pause").click()
    page.locator('#schedules tr[data-schedule="often"] button.resume').wait_for()
    assert "paused" in page.locator('#schedules tr[data-schedule="often"] td.next').inner_text()
    page.locator('#schedules tr[data-schedule="often"] a.mono').first.click()
    page.locator("#run-schedule", has_text="often fired").wait_for()
    tab.shot("schedules")
    assert tab.errors == []
    tab.close()
