"""How a message reads on each chat: Slack Block Kit, a Teams Adaptive Card (one place for both kinds of notice).

Run notices (service/chatops/notices.py) and registry notifications (service/background/notifier.py)
are built here, so a run, an alias move or an approval reads the same wherever it is posted.
"""

from __future__ import annotations

from typing import Any


def slack_escape(text: str) -> str:
    """Slack's three control characters as entities, so echoed text can't make links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(headline: str, lines: list[str]) -> dict[str, Any]:
    headline, lines = slack_escape(headline), [slack_escape(line) for line in lines]
    body = "\n".join(lines)[:2900]  # a section's text holds 3,000 characters
    return {
        "response_type": "in_channel",
        "text": f"{headline}\n{body}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body or " "}},
        ],
    }


def teams_card(
    headline: str, lines: list[str], link: str | None, *, link_title: str = "Open the run"
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": headline, "weight": "Bolder", "wrap": True},
            *({"type": "TextBlock", "text": line, "wrap": True} for line in lines),
        ],
    }
    if link and link.startswith("http"):
        card["actions"] = [{"type": "Action.OpenUrl", "title": link_title, "url": link}]
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }
