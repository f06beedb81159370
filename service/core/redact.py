"""How a failed job's error reads: what was wrong, in the caller's terms, never the server's paths.

A job's error is shown to whoever can read the job (the API, callbacks, the logs of
a pipeline). Library errors already speak of the caller's own values; this is the
last line that turns the server's folders into the settings that name them, any
other absolute path into a placeholder, and unexpected exceptions into a short
kind. A failed training run's own log tail is the user's output and is not touched.
"""

from __future__ import annotations

import errno
import re
import sys
import tempfile
from pathlib import Path

from amllib.errors import AmlError
from amllib.settings import REPO_ROOT, Settings
from service.errors import classify

_QUOTED_PATH = re.compile(r"""(['"])/[^'"]*\1""")
_BARE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+[\w.@+-]*")


class ErrorWriter:
    """Turns exceptions and backend messages into job errors for one service's settings."""

    def __init__(self, settings: Settings) -> None:
        roots = [
            (settings.home, "$AZML_HOME"),
            (settings.output_root, "$AZML_OUTPUT_ROOT"),
            (settings.data_root, "$AZML_DATA_ROOT"),
            (settings.training_dir, "$AZML_TRAINING_DIR"),
            (Path(sys.prefix), "<python>"),
            (Path(sys.base_prefix), "<python>"),
            (REPO_ROOT, "<service>"),
            (Path(tempfile.gettempdir()), "<tmp>"),
        ]
        pairs = {str(p.resolve()): label for p, label in roots if p is not None and str(p.resolve()) != "/"}
        self._roots = sorted(pairs.items(), key=lambda item: -len(item[0]))  # the deepest root wins

    def redact(self, text: str) -> str:
        """The text with every server path replaced by the setting naming its root, or a placeholder."""
        for root, label in self._roots:
            text = text.replace(root, label)
        text = _QUOTED_PATH.sub(lambda m: f"{m.group(1)}<server path>{m.group(1)}", text)
        return _BARE_PATH.sub("<server path>", text)

    def describe(self, exc: BaseException) -> tuple[str, str]:
        """(message, kind) for an exception that ended a job."""
        if isinstance(exc, AmlError):
            kind, _ = classify(exc)
            return self.redact(str(exc)), kind
        if isinstance(exc, OSError):
            code = errno.errorcode.get(exc.errno or 0, "")
            reason = exc.strerror or type(exc).__name__
            return f"the server's disk refused the operation: {reason}" + (f" ({code})" if code else ""), "internal"
        return f"internal error ({type(exc).__name__}); the service log has the details", "internal"
