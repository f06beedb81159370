"""Tells the operator's subscriptions (AZML_NOTIFY) about registry events, each at most once.

One replica at a time (a leader lease) reads the event feed's table after a cursor kept in the
store, turns rows into notices (service/core/registry_notices.py) and, for every subscription
that wants one, first records the delivery as `sending` under the primary key (happening,
subscription), then posts it (retried, as callbacks are), then records the outcome. A replica
killed between the record and the outcome leaves `sending` behind, which the next leader marks
`unknown`: never a second post. Rows the feed dropped before they were read are skipped with a
warning. On the first start with subscriptions the cursor is set to the newest event: history is not replayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from functools import partial
from typing import Any

import httpx

from amllib import jsonsafe
from amllib.settings import Settings
from service.background.periodic import Leader, every
from service.core.delivery import post_with_retry, signature
from service.core.messages import slack_message, teams_card
from service.core.registry_notices import Notice, notices
from service.core.store import JobStore, Tx
from service.core.subscriptions import Subscription

log = logging.getLogger("service")
CURSOR = "notifier"
BATCH = 200
ATTEMPTS = 4
STALE_SENDING = 600.0  # a send recorded this long ago and never finished: its replica stopped
KEEP_DAYS = 90.0  # how long deliveries are recorded (and a happening is known as told)


class Notifier:
    def __init__(
        self,
        *,
        settings: Settings,
        store: JobStore,
        subscriptions: list[Subscription],
        interval: float = 2.0,
        lead: Leader | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        base_delay: float = 0.5,
    ) -> None:
        self.settings = settings
        self.store = store
        self.subscriptions = subscriptions
        self.interval = interval
        self.lead = lead
        self.transport = transport
        self.base_delay = base_delay
        self._settled = 0.0

    async def begin(self) -> None:
        """Awaited as the service starts: on the very first start, events from now on are told, none before."""
        await self.store.write(lambda tx: tx.start_cursor(CURSOR))

    async def run_forever(self) -> None:
        await every(self.interval, self.once, what="notifying subscriptions", lead=self.lead)

    async def once(self) -> int:
        """Tell what happened since the cursor; how many deliveries were made (or tried)."""
        await self._settle()
        cursor = await self.store.write(lambda tx: tx.cursor(CURSOR))
        if cursor is None:
            await self.begin()
            return 0
        oldest = (await self.store.read(self.store.event_bounds))[0]
        if oldest and cursor < oldest - 1:  # the feed keeps only so many: what went unread is not told
            log.warning("notifications: events %d to %d were dropped before they were read", cursor + 1, oldest - 1)
        sent = 0
        while rows := await self.store.read(self.store.events_after, cursor, limit=BATCH):
            for seq, topic, data in rows:
                sent += await self._tell(seq, topic, data)
                cursor = seq
                await self.store.write(partial(_move, seq=seq))
            if len(rows) < BATCH:
                break
        return sent

    async def _settle(self) -> None:
        """Once a minute: sends left unfinished by a stopped replica become `unknown`; old records go."""
        now = time.time()
        if now - self._settled < 60:
            return
        self._settled = now
        await self.store.write(
            lambda tx: tx.settle_notifications(
                sending_before=tx.now() - STALE_SENDING, forget_before=tx.now() - KEEP_DAYS * 86400
            )
        )

    async def _tell(self, seq: int, topic: str, data: str) -> int:
        try:
            body = json.loads(data)
        except ValueError:
            return 0
        sends = []
        for notice in notices(self.settings, seq, topic, body):
            for sub in self.subscriptions:
                if not sub.wants(notice.event, notice.model):
                    continue
                claimed = await self.store.write(partial(_claim, notice=notice, sub=sub, seq=seq))
                if claimed:
                    sends.append(self._send(sub, notice))
        await asyncio.gather(*sends)  # one event's subscriptions at once; events stay in order
        return len(sends)

    async def _send(self, sub: Subscription, notice: Notice) -> None:
        content, headers = payload(sub, notice)
        delivered, what = await post_with_retry(
            sub.url,
            content=content,
            headers=headers,
            attempts=ATTEMPTS,
            base_delay=self.base_delay,
            transport=self.transport,
        )
        status = "delivered" if delivered else "failed"
        if not delivered:  # the subscription's name only: its URL may hold a secret
            log.warning("notification %s to %s failed: %s", notice.key, sub.name, what)
        await self.store.write(lambda tx: tx.record_notification(notice.key, sub.name, status=status, outcome=what))


def _move(tx: Tx, *, seq: int) -> None:
    tx.move_cursor(CURSOR, seq)


def _claim(tx: Tx, *, notice: Notice, sub: Subscription, seq: int) -> bool:
    return tx.claim_notification(notice.key, sub.name, event=notice.event, seq=seq)


def payload(sub: Subscription, notice: Notice) -> tuple[bytes, dict[str, str]]:
    """The body and headers for one subscription: a chat message, or the event as signed JSON."""
    headers = {"content-type": "application/json"}
    message: dict[str, Any]
    if sub.to == "slack":
        message = slack_message(notice.headline, [*notice.lines, *([notice.link] if notice.link else [])])
        message.pop("response_type", None)
    elif sub.to == "teams":
        message = teams_card(notice.headline, notice.lines, notice.link, link_title="Open")
    elif sub.to == "mattermost":
        message = {
            "text": "\n".join([f"**{notice.headline}**", *notice.lines, *([notice.link] if notice.link else [])])
        }
    else:
        message = {"event": notice.event, "key": notice.key, "text": notice.headline, "data": notice.data}
        headers["x-event"] = notice.event
        headers["x-delivery"] = notice.key  # the same happening never comes twice; a receiver may check
    content = jsonsafe.dumps(message).encode()
    if sub.to == "webhook" and sub.secret:
        headers["x-signature"] = signature(sub.secret, content)
    return content, headers
