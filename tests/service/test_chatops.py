"""Chat-ops against a real service: requests signed as Slack, Teams and Mattermost sign them, a local
listener playing each command's response_url and the incoming webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from tests.service.conftest import Listener, Service, upload

SLACK_SECRET = "slack-signing-secret-for-tests"
TEAMS_SECRET = base64.b64encode(b"teams-outgoing-webhook-token").decode()
MATTERMOST_TOKEN = "mattermost-token-for-tests"
PUBLIC = "https://dash.example"


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def chat(make_service, listener: Listener) -> Service:
    service = make_service(
        AZML_SLACK_SIGNING_SECRET=SLACK_SECRET,
        AZML_TEAMS_HMAC_SECRET=TEAMS_SECRET,
        AZML_TEAMS_WEBHOOK_URL=f"http://127.0.0.1:{listener.port}/teams",
        AZML_MATTERMOST_TOKEN=MATTERMOST_TOKEN,
        AZML_CHATOPS_WRITERS="slack:U_WRITER,teams:29:writer,mattermost:mm-writer",
        AZML_CALLBACK_HOSTS=f"127.0.0.1:{listener.port}",
        AZML_PUBLIC_URL=PUBLIC,
    )
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
    return service


def slack(service: Service, text: str, *, user: str = "U_WRITER", response_url: str | None = None, **sign: object):
    """POST a slash command signed with slack_sdk, as Slack does; sign= may set timestamp, secret, retry."""
    fields = {
        "team_id": "T1",
        "user_id": user,
        "user_name": "someone",
        "command": "/aml",
        "text": text,
        "response_url": response_url or "",
        "trigger_id": f"trigger-{text}-{sign.get('trigger', time.time())}",
    }
    body = urlencode(fields)
    timestamp = str(int(sign.get("timestamp", time.time())))
    signature = SignatureVerifier(str(sign.get("secret", SLACK_SECRET))).generate_signature(
        timestamp=timestamp, body=body
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    if "retry" in sign:
        headers["X-Slack-Retry-Num"] = str(sign["retry"])
    return httpx.post(f"{service.url}/chatops/slack", content=body, headers=headers, timeout=10)


def runs_of(service: Service) -> list[dict]:
    with service.client() as client:
        return client.get("/runs").json()["items"]


def test_slack_train_is_acknowledged_at_once_and_reported_in_the_channel(chat: Service, listener: Listener) -> None:
    hook = f"http://127.0.0.1:{listener.port}/slack-response"
    started = time.monotonic()
    answer = slack(chat, 'train estimators=10 flavour="nightly build"', response_url=hook)
    assert answer.status_code == 200 and time.monotonic() - started < 3
    ack = answer.json()
    assert ack["response_type"] == "ephemeral" and ack["text"].startswith("Started run run_")
    job_id = ack["text"].split()[2].rstrip(":")
    assert f"{PUBLIC}/ui/runs/{job_id}" in ack["text"]
    listener.wait(1)
    _headers, body = listener.received[0]
    notice = json.loads(body)
    assert notice["response_type"] == "in_channel" and notice["blocks"]
    run = runs_of(chat)[0]
    assert f"Run {run['backend_run_id']} Completed" in notice["text"]  # the id the list and the scripts show
    assert "accuracy 0.93" in notice["text"] and "Model: svc-model version 1" in notice["text"]
    assert (
        run["created_by"] == "slack:U_WRITER"
        and "started_by" not in run
        and run["params"]
        == {
            "estimators": 10,
            "args": {"flavour": "nightly build"},
        }
    )


def test_slack_read_commands_and_cancel(chat: Service) -> None:
    slack(chat, "train")
    with chat.client() as client:
        done = client.get(f"/runs/{runs_of(chat)[0]['id']}", params={"wait": 60}).json()
    assert "Completed" in slack(chat, f"status {done['id']}").json()["text"]
    assert done["id"] in slack(chat, "runs 5").json()["text"]  # in its link
    with chat.client() as client:
        assert client.patch(f"/runs/{done['id']}", json={"name": "nightly"}).status_code == 200
    shown = f'{done["backend_run_id"]} "nightly"'  # the list's and the run page's title, in chat too
    assert slack(chat, f"status {done['id']}").json()["text"].startswith(f"Run {shown} (")
    assert slack(chat, "runs 5").json()["text"].splitlines()[1].startswith(f"{shown} Completed")
    best = slack(chat, "best").json()["text"]
    assert best.startswith("Best svc-model: version 1") and "accuracy 0.93" in best
    assert "data files" in slack(chat, f"logs {done['id']} 5").json()["text"]
    assert slack(chat, "models").json()["text"] == "Models: svc-model"
    long = slack(chat, "train script=sleep_and_record.py seconds=60").json()["text"].split()[2].rstrip(":")
    asked = slack(chat, f"cancel {long}").json()["text"]
    assert asked.startswith("Asked run ") and " to stop." in asked and asked.endswith(f"/ui/runs/{long}")
    with chat.client() as client:
        assert client.get(f"/runs/{long}", params={"wait": 30}).json()["job"]["status"] == "Canceled"
    for mistake in (
        "frobnicate",
        "status",
        "runs lots",
        'train flavour="unclosed',
        "status run_nope",
        "train estimators=0",
    ):
        reply = slack(chat, mistake)
        assert reply.status_code == 200 and reply.json()["response_type"] == "ephemeral", mistake
    assert "Unknown command" in slack(chat, "frobnicate").json()["text"]
    assert "not found" in slack(chat, "status run_nope").json()["text"]


def test_slack_refusals_start_nothing(make_service, chat: Service, listener: Listener) -> None:
    assert slack(chat, "train", secret="not-the-secret").status_code == 401
    assert slack(chat, "train", timestamp=time.time() - 600).status_code == 401  # a replay
    unsigned = httpx.post(f"{chat.url}/chatops/slack", content="text=train&user_id=U_WRITER", timeout=10)
    assert unsigned.status_code == 401
    stranger = slack(chat, "train", user="U_STRANGER").json()["text"]
    assert "U_STRANGER" in stranger and "AZML_CHATOPS_WRITERS" in stranger
    elsewhere = slack(chat, "train", response_url="https://evil.example/hook")
    assert elsewhere.status_code == 422 and "evil" not in elsewhere.text
    assert runs_of(chat) == []
    no_secret = make_service()
    assert slack(no_secret, "train").status_code == 401
    assert runs_of(no_secret) == []
    assert SLACK_SECRET not in chat.log.read_text()


def test_a_slack_retry_never_starts_a_second_run(chat: Service) -> None:
    first = slack(chat, "train", trigger="same").json()["text"]
    again = slack(chat, "train", trigger="same", retry=1).json()["text"]
    assert first.splitlines()[-1] == again.splitlines()[-1] and again.startswith("Already started run")  # one link
    assert len(runs_of(chat)) == 1


def teams(service: Service, activity: dict, *, secret: str = TEAMS_SECRET) -> httpx.Response:
    body = json.dumps(activity).encode()
    digest = hmac.new(base64.b64decode(secret), body, hashlib.sha256).digest()
    headers = {"Authorization": "HMAC " + base64.b64encode(digest).decode(), "Content-Type": "application/json"}
    return httpx.post(f"{service.url}/chatops/teams", content=body, headers=headers, timeout=10)


def test_teams_hmac_mention_and_adaptive_card(chat: Service, listener: Listener) -> None:
    activity = {
        "type": "message",
        "id": "1",
        "text": "<at>AML</at>&nbsp;train estimators=3",
        "from": {"id": "29:writer"},
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    reply = teams(chat, activity)
    assert reply.status_code == 200 and reply.json()["type"] == "message"
    assert reply.json()["text"].startswith("Started run run_")
    listener.wait(1)
    _headers, body = listener.received[0]
    card = json.loads(body)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "Completed" in card["content"]["body"][0]["text"]
    assert card["content"]["actions"][0]["url"].startswith(f"{PUBLIC}/ui/runs/run_")
    forged = teams(chat, {**activity, "id": "2"}, secret=base64.b64encode(b"another token").decode())
    assert forged.status_code == 401
    reader = teams(chat, {**activity, "id": "3", "from": {"id": "29:reader"}}).json()["text"]
    assert "AZML_CHATOPS_WRITERS" in reader
    assert len(runs_of(chat)) == 1


def test_mattermost_token(chat: Service, listener: Listener) -> None:
    fields = {"token": MATTERMOST_TOKEN, "user_id": "mm-writer", "text": "train", "trigger_id": "mm-1"}
    fields["response_url"] = f"http://127.0.0.1:{listener.port}/mattermost"
    reply = httpx.post(f"{chat.url}/chatops/mattermost", data=fields, timeout=10)
    assert reply.status_code == 200 and reply.json()["text"].startswith("Started run run_")
    listener.wait(1)
    assert json.loads(listener.received[0][1])["response_type"] == "in_channel"
    wrong = httpx.post(f"{chat.url}/chatops/mattermost", data={**fields, "token": "guess"}, timeout=10)
    assert wrong.status_code == 401
    assert len(runs_of(chat)) == 1


def test_notices_fall_back_to_the_webhook_once_the_response_url_expired() -> None:
    from amllib.settings import Settings
    from service.chatops.notices import destination
    from service.core.delivery import notice_url_allowed as url_allowed

    settings = Settings(_env_file=None, slack_webhook_url="https://hooks.slack.com/services/T/B/x")
    fresh = {"platform": "slack", "response_url": "https://hooks.slack.com/commands/1", "at": time.time()}
    assert destination(settings, fresh) == fresh["response_url"]
    assert destination(settings, {**fresh, "at": time.time() - 31 * 60}) == settings.slack_webhook_url
    assert url_allowed(settings, fresh["response_url"], platform="slack")
    for refused in (
        "http://hooks.slack.com/commands/1",
        "https://hooks.slack.com.evil.example/x",
        "https://u:p@hooks.slack.com/x",
    ):
        assert not url_allowed(settings, refused, platform="slack"), refused
    assert not url_allowed(settings, "https://mattermost.example/hook", platform="mattermost")


def test_promotion_from_chat_asks_another_writer_to_approve(make_service, listener: Listener) -> None:
    """Issue 28: `promote`, `approve`, `reject`, `aliases` on the same rules as the API; the requester is a chat
    user, so another writer (on any platform) approves."""
    service = make_service(
        AZML_SLACK_SIGNING_SECRET=SLACK_SECRET,
        AZML_CHATOPS_WRITERS="slack:U_WRITER,slack:U_OTHER",
        AZML_PROTECTED_ALIASES="production",
    )
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        assert client.post("/runs", params={"wait": 60}, json={}).json()["status"] == "Completed"
    asked = slack(service, "promote 1 to production first release").json()["text"]
    assert "approval appr_" in asked and "approve appr_" in asked, asked
    approval = asked.split("approval ")[1].split(" ")[0]
    assert "someone else" in slack(service, f"approve {approval}").json()["text"]  # the requester's own
    assert "may not `approve`" in slack(service, f"approve {approval}", user="U_READER").json()["text"]
    done = slack(service, f"approve {approval} looks right", user="U_OTHER").json()["text"]
    assert done.startswith(f"Approved {approval}: svc-model@production is version 1"), done
    assert "`production` → version 1" in slack(service, "aliases").json()["text"]
    assert "staging` of svc-model" not in slack(service, "promote 1 to staging").json()["text"]
    assert "usage: promote" in slack(service, "promote production").json()["text"]
    with service.client() as client:
        history = client.get("/models/svc-model/history").json()["history"]
    assert [(h["alias"], h["by"], h["approved_by"]) for h in history] == [
        ("staging", "slack:U_WRITER", None),
        ("production", "slack:U_WRITER", "slack:U_OTHER"),
    ]


def test_endpoints_deploy_and_rollback_from_chat(make_service) -> None:
    """Issue 29 from chat: the same deployment jobs as POST /deployments, for writers only."""
    service = make_service(
        AZML_SLACK_SIGNING_SECRET=SLACK_SECRET,
        AZML_CHATOPS_WRITERS="slack:U_WRITER",
        AZML_SCRIPT="contract_model.py",
        AZML_MODEL="titanic-model",
    )
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        for _ in range(2):
            assert client.post("/runs", params={"wait": 120}, json={}).json()["status"] == "Completed"
        assert client.put("/models/titanic-model/aliases/production", json={"version": 2}).status_code == 200

        assert "No endpoints yet" in slack(service, "endpoints").json()["text"]
        assert "may not `deploy`" in slack(service, "deploy titanic-model:1 to titanic", user="U_READER").json()["text"]
        started = slack(service, "deploy titanic-model:1 to titanic").json()["text"]
        assert started.startswith("Deploying titanic-model:1 to titanic (deploy_"), started
        job = started.split("(")[1].split(")")[0]
        assert client.get(f"/deployments/jobs/{job}", params={"wait": 120}).json()["status"] == "Completed"
        by_alias = slack(service, "deploy titanic-model@production to titanic").json()["text"]
        job = by_alias.split("(")[1].split(")")[0]
        done = client.get(f"/deployments/jobs/{job}", params={"wait": 120}).json()
        assert (done["status"], done["version"], done["created_by"]) == ("Completed", 2, "slack:U_WRITER")
        listed = slack(service, "endpoints").json()["text"]
        assert "`titanic` (up): " in listed and "v2 100% (green)" in listed and "v1 0% (blue)" in listed, listed
        rolled = slack(service, "rollback titanic").json()["text"]
        job = rolled.split("(")[1].split(")")[0]
        assert client.get(f"/deployments/jobs/{job}", params={"wait": 60}).json()["version"] == 1
        assert "usage: deploy" in slack(service, "deploy titanic-model:1 titanic").json()["text"]
        assert "&lt;model&gt;@&lt;alias&gt;" in slack(service, "deploy titanic-model to titanic").json()["text"]
        assert "not found" in slack(service, "rollback nowhere").json()["text"]


def test_schedules_pause_and_resume_from_chat(make_service) -> None:
    """Issue 30 from chat: schedules read by anyone; pause and resume for writers."""
    service = make_service(AZML_SLACK_SIGNING_SECRET=SLACK_SECRET, AZML_CHATOPS_WRITERS="slack:U_WRITER")
    with service.client() as client:
        upload(client, {"a.csv": b"1,2\n"})
        assert "No schedules yet" in slack(service, "schedules").json()["text"]
        body = {"name": "weekly", "trigger": {"cron": "0 3 * * 1", "timezone": "Europe/London"}}
        assert client.post("/schedules", json=body).status_code == 201
        listed = slack(service, "schedules", user="U_READER").json()["text"]
        assert "`weekly`: cron `0 3 * * 1` (Europe/London), next 20" in listed, listed
        assert "may not `pause`" in slack(service, "pause weekly", user="U_READER").json()["text"]
        assert slack(service, "pause weekly").json()["text"] == "Schedule weekly paused."
        assert client.get("/schedules/weekly").json()["paused"] is True
        assert "`weekly`: cron `0 3 * * 1` (Europe/London), paused" in slack(service, "schedules").json()["text"]
        assert slack(service, "resume weekly").json()["text"].startswith("Schedule weekly resumed: next fire 20")
        assert "not found" in slack(service, "pause nothing").json()["text"]
