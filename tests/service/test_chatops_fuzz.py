"""The chat endpoints under generated input, signed as each platform signs it: never a 500.

Like the schemathesis run for the JSON API, but these endpoints read raw bodies and their own
signature headers, which the OpenAPI document cannot describe. Deterministic (derandomized).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

SLACK_SECRET = "slack-signing-secret-for-fuzzing"
TEAMS_SECRET = base64.b64encode(b"teams-token-for-fuzzing").decode()
MATTERMOST_TOKEN = "mattermost-token-for-fuzzing"
FUZZ = settings(
    max_examples=120, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
form_fields = st.dictionaries(
    st.sampled_from(["text", "user_id", "team_id", "trigger_id", "response_url", "token", "command", "x"]),
    st.text(max_size=40),
    max_size=6,
)


@pytest.fixture
def chat_client(make_app):
    return make_app(
        token=None,
        slack_signing_secret=SLACK_SECRET,
        teams_hmac_secret=TEAMS_SECRET,
        mattermost_token=MATTERMOST_TOKEN,
    )


def never_a_server_error(answer) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text)
    assert "Traceback" not in answer.text


def test_slack_timestamps_and_signatures_of_any_shape(chat_client) -> None:
    @FUZZ
    @given(
        timestamp=st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=16)
        | st.sampled_from(["abc", "1.5", "", f"{int(time.time())}.0"]),
        body=st.binary(max_size=64),
    )
    def check(timestamp: str, body: bytes) -> None:
        headers = {
            "X-Slack-Request-Timestamp": timestamp.encode(),
            "X-Slack-Signature": b"v0=00",
        }
        answer = chat_client.post("/chatops/slack", content=body, headers=headers)
        never_a_server_error(answer)
        assert answer.status_code == 401

    check()


def test_signed_slack_and_mattermost_forms_of_any_content(chat_client) -> None:
    @FUZZ
    @given(fields=form_fields)
    def check(fields: dict[str, str]) -> None:
        body = urlencode(fields).encode()
        stamp = str(int(time.time()))
        signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=stamp, body=body)
        headers = {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        never_a_server_error(chat_client.post("/chatops/slack", content=body, headers=headers))
        mattermost = urlencode({**fields, "token": MATTERMOST_TOKEN}).encode()
        never_a_server_error(chat_client.post("/chatops/mattermost", content=mattermost, headers=headers))

    check()


def teams_post(client, body: bytes):
    digest = hmac.new(base64.b64decode(TEAMS_SECRET), body, hashlib.sha256).digest()
    headers = {"Authorization": "HMAC " + base64.b64encode(digest).decode(), "Content-Type": "application/json"}
    return client.post("/chatops/teams", content=body, headers=headers)


def test_signed_teams_bodies_of_any_shape(chat_client) -> None:
    now = datetime.now(UTC).isoformat()

    @FUZZ
    @given(activity=json_values, sender=json_values, text=json_values)
    def check(activity: object, sender: object, text: object) -> None:
        never_a_server_error(teams_post(chat_client, json.dumps(activity).encode()))
        shaped = {"type": "message", "id": "x", "from": sender, "text": text, "timestamp": now}
        never_a_server_error(teams_post(chat_client, json.dumps(shaped).encode()))

    check()


@pytest.mark.parametrize("sender", ["29:writer", ["29:writer"], 7])
def test_a_teams_sender_that_is_not_an_object_is_a_400(chat_client, sender: object) -> None:
    activity = {
        "type": "message",
        "id": "1",
        "text": "help",
        "from": sender,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    answer = teams_post(chat_client, json.dumps(activity).encode())
    assert answer.status_code == 422 and answer.json()["error"] == "invalid", answer.text


@pytest.mark.parametrize("stamp", [None, "yesterday", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00"])
def test_an_old_or_undated_teams_activity_is_refused(chat_client, stamp: str | None) -> None:
    activity = {"type": "message", "id": "1", "text": "help", "from": {"id": "29:a"}}
    if stamp is not None:
        activity["timestamp"] = stamp
    answer = teams_post(chat_client, json.dumps(activity).encode())
    assert answer.status_code == 401, answer.text


def test_a_fresh_teams_activity_is_answered(chat_client) -> None:
    activity = {
        "type": "message",
        "id": "1",
        "text": "<at>AML</at> help",
        "from": {"id": "29:a"},
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    answer = teams_post(chat_client, json.dumps(activity).encode())
    assert answer.status_code == 200 and answer.json()["text"].startswith("Commands:"), answer.text


def slack_post(client, fields: dict[str, str]):
    body = urlencode(fields).encode()
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=stamp, body=body)
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
    return client.post("/chatops/slack", content=body, headers=headers)


def test_echoed_text_cannot_make_slack_links_or_mentions(chat_client) -> None:
    text = slack_post(chat_client, {"text": "<!channel> more", "user_id": "U1"}).json()["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    text = slack_post(chat_client, {"text": "status <https://evil.example|x>&y", "user_id": "U1"}).json()["text"]
    assert "<https://" not in text and "&lt;https://evil.example|x&gt;&amp;y" in text


def test_mattermost_with_a_server_it_may_not_post_to_says_so_in_the_chat(chat_client) -> None:
    fields = {"token": MATTERMOST_TOKEN, "text": "help", "user_id": "u", "response_url": "https://mm.example/hook"}
    answer = chat_client.post("/chatops/mattermost", data=fields)
    assert answer.status_code == 200, answer.text
    assert "AZML_CALLBACK_HOSTS" in answer.json()["text"] and "mm.example" in answer.json()["text"]


def test_a_refused_signature_is_logged_once_a_minute(chat_client, caplog) -> None:
    import logging

    from service.chatops import commands

    commands._REFUSALS.clear()
    service_log = logging.getLogger("service")
    service_log.addHandler(caplog.handler)
    try:
        for _ in range(5):
            chat_client.post("/chatops/slack", content=b"text=x", headers={"X-Slack-Request-Timestamp": "1"})
    finally:
        service_log.removeHandler(caplog.handler)
    refusals = [r for r in caplog.records if "chat request from slack refused" in r.getMessage()]
    assert len(refusals) == 1 and "signature" in refusals[0].getMessage()
