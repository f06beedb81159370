"""Wait for a run while showing it, like `az ml job stream`: each change of status with the time since the
wait began, and the run's log as it is written (whole lines, read on from where the last read ended)."""

from __future__ import annotations

import time
from collections.abc import Callable

from amllib.backends.base import Backend, RunInfo
from amllib.errors import AmlError, NotFound


def elapsed(seconds: float) -> str:
    """12:05 (minutes:seconds), 1:02:05 past an hour."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class RunStream:
    """Polls one run every `poll` seconds until it ends or `timeout` passes; tells `say` what changed."""

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        *,
        say: Callable[[str], None],
        logs: bool = True,
        poll: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend, self.run_id, self.say, self.logs = backend, run_id, say, logs
        self.poll, self.clock, self.sleep = poll, clock, sleep
        self.offset = 0
        self._log_warned = False

    def wait(self, timeout: float | None = None) -> RunInfo:
        started = self.clock()
        deadline = None if timeout is None else started + timeout
        status = None
        while True:
            info = self.backend.get_run(self.run_id)
            if info.status != status:
                status = info.status
                self.say(f"### [{elapsed(self.clock() - started)}] run {self.run_id} is {status}")
            self._show_log()
            if info.status.terminal or (deadline is not None and self.clock() >= deadline):
                return info
            self.sleep(self.poll)

    def _show_log(self) -> None:
        if not self.logs:
            return
        try:
            text, self.offset = self.backend.read_log(self.run_id, self.offset)
        except NotFound:  # no log yet (a run still queued on a cluster)
            return
        except AmlError as exc:  # a log that cannot be read now must not end the wait: said once, tried again
            if not self._log_warned:
                self.say(f"### (the run's log could not be read, still waiting: {exc})")
                self._log_warned = True
            return
        for line in text.splitlines():
            self.say(line)
