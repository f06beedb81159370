"""A local endpoint's state: one JSON file the control plane writes and the endpoint's process reads.

`<AZML_HOME>/endpoints/<name>/endpoint.json` holds the endpoint's port, its two keys, its
deployments (slot → model, version, alias, the folder of its files) and the traffic map. Every
write replaces the file whole (a temporary file, fsync, rename) under an exclusive lock of a
sibling lock file, so a reader sees the old state or the new one, and two writers take turns.
Each write bumps `generation`: the process reports the generation it serves on /healthz, so a
writer knows when a change is live.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE = "endpoint.json"


@dataclass
class Slot:
    model: str
    version: int
    folder: str  # under the endpoint's folder
    alias: str | None = None
    created_at: float = 0.0


@dataclass
class EndpointState:
    name: str
    port: int
    keys: dict[str, str]  # primary, secondary
    deployments: dict[str, Slot] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    follow: dict[str, str] | None = None  # {"model", "alias"}: roll to the alias's new holder
    generation: int = 0

    @classmethod
    def new(cls, name: str, port: int) -> EndpointState:
        return cls(name=name, port=port, keys={"primary": new_key(), "secondary": new_key()})

    @classmethod
    def from_dict(cls, found: dict[str, Any]) -> EndpointState:
        slots = {name: Slot(**slot) for name, slot in (found.get("deployments") or {}).items()}
        return cls(
            name=found["name"],
            port=int(found["port"]),
            keys=dict(found["keys"]),
            deployments=slots,
            traffic={k: int(v) for k, v in (found.get("traffic") or {}).items()},
            follow=found.get("follow"),
            generation=int(found.get("generation", 0)),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def live(self) -> str | None:
        """The slot taking the most traffic (None: none takes any)."""
        taking = [(share, name) for name, share in self.traffic.items() if share > 0]
        return max(taking)[1] if taking else None


def new_key() -> str:
    return secrets.token_urlsafe(32)


def read(folder: Path) -> EndpointState | None:
    try:
        return EndpointState.from_dict(json.loads((folder / STATE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def change(folder: Path, edit: Callable[[EndpointState | None], EndpointState | None]) -> EndpointState | None:
    """Read, edit and write the state under the lock; edit returns the new state (None: remove it)."""
    with _locked(folder):
        state = edit(read(folder))
        path = folder / STATE
        if state is None:
            path.unlink(missing_ok=True)
            return None
        state.generation += 1
        temporary = folder / f".{STATE}.{os.getpid()}"
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(state.as_dict(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # it holds the endpoint's keys
        os.replace(temporary, path)
        return state
