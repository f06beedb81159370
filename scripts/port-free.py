"""Exit 1, saying so, when HOST:PORT can't be listened on (start.sh asks before the demo runs)."""

from __future__ import annotations

import socket
import sys


def main(host: str, port: str) -> int:
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        print(f"start.sh: can't listen on {host}:{port} ({exc}); set AZML_HOST / AZML_PORT", file=sys.stderr)
        return 1
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            print(
                f"start.sh: {host}:{port} is taken ({exc.strerror}): is the service running already? "
                "Stop it, or set AZML_PORT to another port. Nothing was run.",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
