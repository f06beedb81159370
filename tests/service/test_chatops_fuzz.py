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
