"""AZML_NOTIFY read at start-up: what is wrong is named, a URL (which may hold a secret) never repeated."""

from __future__ import annotations

import json

import pytest

from amllib.errors import ConfigError
from service.core.subscriptions import EVENTS, subscriptions
from tests.conftest import make_settings

SECRET_URL = "https://hooks.slack.com/services/T000/B000/very-secret-part"


def read(tmp_path, value: object, **extra: object):
    text = value if isinstance(value, str) else json.dumps(value)
    return subscriptions(make_settings(tmp_path, notify=text, **extra))


def test_a_subscription_defaults_to_every_event_and_model_and_the_webhook_secret(tmp_path) -> None:
    slack, hook = read(
        tmp_path,
        [
            {"name": "ops", "to": "slack", "url": SECRET_URL},
            {"name": "audit", "to": "webhook", "url": "http://10.0.0.5/in", "models": ["titanic"]},
        ],
        webhook_secret="shared",
    )
    assert slack.events == frozenset(EVENTS) and slack.models is None and slack.secret is None
    assert hook.secret == "shared" and hook.wants("alias.changed", "titanic") and not hook.wants("run.failed", "x")
    assert "url" not in slack.public() and SECRET_URL not in str(slack.public())
    assert read(tmp_path, "  ") == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("[{", "not JSON"),
        ({"name": "x"}, "a JSON list"),
        (["x"], "entry 1 is not an object"),
        ([{"name": "bad name!", "to": "slack", "url": SECRET_URL}], "name is 1 to 64"),
        ([{"name": "a", "to": "email", "url": SECRET_URL}], "to is one of"),
        ([{"name": "a", "to": "slack", "url": "ftp://very-secret-part"}], "http:// or https://"),
        ([{"name": "a", "to": "slack", "url": "https://user:very-secret-part@h/"}], "http:// or https://"),
        ([{"name": "a", "to": "slack", "url": SECRET_URL, "events": ["run.done"]}], "unknown events 'run.done'"),
        ([{"name": "a", "to": "slack", "url": SECRET_URL, "events": []}], "non-empty list"),
        ([{"name": "a", "to": "slack", "url": SECRET_URL, "secret": "s"}], "for a webhook only"),
        ([{"name": "a", "to": "slack", "url": SECRET_URL, "model": ["m"]}], "unknown fields 'model'"),
        ([{"name": "a", "to": "slack", "url": SECRET_URL}, {"name": "a", "to": "teams", "url": SECRET_URL}], "own"),
    ],
)
def test_what_is_wrong_is_named_and_no_url_is_repeated(tmp_path, value: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read(tmp_path, value)
    assert words in str(caught.value)
    assert "very-secret-part" not in str(caught.value)


def test_the_service_refuses_to_start_with_subscriptions_named_wrong(tmp_path) -> None:
    from service.app import create_app

    with pytest.raises(ConfigError, match="AZML_NOTIFY"):
        create_app(make_settings(tmp_path, notify="[1]"))
