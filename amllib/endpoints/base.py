"""Online endpoints behind one interface: a stable scoring URL, deployments (slots) of model versions
beside each other, a traffic map, keys. The blue/green rules (which slot a new version goes to, the
smoke test, the rollback target) are service/deployments.py's; backends only keep and serve."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from amllib.backends.base import ModelVersion

SLOTS = ("blue", "green")


@dataclass(frozen=True)
class DeploymentInfo:
    name: str  # the slot: blue or green
    model: str
    version: int
    alias: str | None
    traffic: int
    error: str | None = None  # it could not be loaded (the model's files are not the seed's contract)


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    scoring_url: str
    deployments: list[DeploymentInfo]
    health: str  # up, down
    follow: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def traffic(self) -> dict[str, int]:
        return {d.name: d.traffic for d in self.deployments}

    def slot(self, name: str) -> DeploymentInfo | None:
        return next((d for d in self.deployments if d.name == name), None)


class Endpoints(ABC):
    """One backend's online endpoints. Every call may take seconds (models load); none is on an event loop."""

    @abstractmethod
    def list_endpoints(self) -> list[EndpointInfo]: ...

    @abstractmethod
    def get(self, name: str) -> EndpointInfo:
        """Raises EndpointNotFound."""

    @abstractmethod
    def deploy(self, name: str, slot: str, version: ModelVersion, *, alias: str | None) -> None:
        """Serve version in slot beside what serves now, with 0 % traffic (the endpoint made when new);
        returns once it is loaded and answers. SmokeTestFailed when its files cannot be served."""

    @abstractmethod
    def invoke(self, name: str, path: str, body: Any | None, *, slot: str) -> tuple[int, Any]:
        """One request to one slot, as a caller would send it (with a key); (status, JSON body)."""

    @abstractmethod
    def set_traffic(self, name: str, traffic: dict[str, int]) -> None:
        """Move traffic (percent per slot, summing to 100); returns once the endpoint routes by it."""

    @abstractmethod
    def remove_slot(self, name: str, slot: str) -> None: ...

    @abstractmethod
    def set_follow(self, name: str, follow: dict[str, str] | None) -> None:
        """Remember that the endpoint follows an alias ({"model", "alias"}) or nothing."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Stop serving and forget the endpoint; EndpointNotFound."""

    @abstractmethod
    def keys(self, name: str) -> dict[str, str]:
        """The endpoint's two keys (primary, secondary)."""

    @abstractmethod
    def regenerate_key(self, name: str, which: str) -> dict[str, str]: ...

    @abstractmethod
    def stats(self, name: str) -> dict[str, Any]:
        """Requests, errors and latency per slot since the endpoint started ({} when it cannot be read)."""

    def ensure_running(self) -> list[str]:
        """Start what should serve and does not (the local processes); the names started."""
        return []
