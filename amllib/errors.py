"""The exceptions amllib raises, so callers can tell a user's mistake from a fault.

    AmlError
    ├── ConfigError           settings missing or invalid (every problem named at once)
    ├── InvalidInput          a caller sent something unusable
    │   └── UnsafePath        a path, archive entry or name that would escape its place
    ├── NotFound
    │   ├── DataNotFound
    │   ├── RunNotFound
    │   └── ModelNotFound     unknown model, or unknown version of it
    ├── Conflict              the request clashes with existing state
    ├── RunFailed             a training run ended Failed or Canceled
    └── BackendUnavailable    the backend (Azure, the disk) could not be reached or failed
        └── MetricsUnavailable   a run's metrics could not be read (not: it has none)

The service maps this tree to HTTP statuses in one table (service/errors.py).
"""

EXCERPT = 80


def quoted(value: object, limit: int = EXCERPT) -> str:
    """A caller's value for an error message: repr'd, cut to a short excerpt so a huge value is never echoed."""
    text = str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} characters)"


class AmlError(Exception):
    """Base of every error amllib raises on purpose."""


class ConfigError(AmlError):
    """Settings are missing or invalid."""


class InvalidInput(AmlError):
    """Input from a caller that cannot be used as given."""


class UnsafePath(InvalidInput):
    """A caller-supplied path that would reach outside its root."""


class NotFound(AmlError):
    """The named thing does not exist."""


class DataNotFound(NotFound):
    """No data at that datastore path."""


class RunNotFound(NotFound):
    """No run with that id."""


class ModelNotFound(NotFound):
    """No such model, or no such version of it."""


class EndpointNotFound(NotFound):
    """No online endpoint of that name."""


class Conflict(AmlError):
    """The request clashes with existing state."""


class RunFailed(AmlError):
    """A training run did not complete."""


class SmokeTestFailed(AmlError):
    """A new deployment did not answer its smoke test: traffic stayed where it was."""


class BackendUnavailable(AmlError):
    """The backend could not be reached, or failed on its side."""


class MetricsUnavailable(BackendUnavailable):
    """A run's metrics could not be read (the tracking store refused or could not be reached): never the same
    as a run that logged none."""


# The word each of the library's errors is given, most specific first: the scripts' `--json` errors and the
# service's error bodies (service/errors.py adds its own kinds and the HTTP status of each) say the same.
KINDS: list[tuple[type[AmlError], str]] = [
    (UnsafePath, "unsafe_path"),
    (InvalidInput, "invalid"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
    (RunFailed, "run_failed"),
    (SmokeTestFailed, "smoke_test_failed"),
    (BackendUnavailable, "backend"),
    (ConfigError, "config"),
    (AmlError, "internal"),
]


def kind_of(exc: BaseException) -> str:
    return next((kind for cls, kind in KINDS if isinstance(exc, cls)), "internal")
