"""``crossentropy explore``: a local page to move probabilities and watch the numbers."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from .. import InputError
from .arguments import Commands, port

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    """Add the ``explore`` command."""
    explore = commands.add_parser(
        "explore",
        help="a local page to edit P and Q and watch entropy, cross-entropy and KL change",
        epilog="example:\n  crossentropy explore --port 8765 --no-browser",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explore.add_argument("--port", type=port, default=0, help="port on 127.0.0.1, 0 to 65535 (default 0: a free one)")
    explore.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    explore.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve the explorer on 127.0.0.1 until Ctrl-C or SIGTERM."""
    from .._explore import make_server

    try:
        server = make_server(args.port)
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    address = f"http://{host!s}:{port}/"
    print(f"crossentropy explore: serving {address} (Ctrl-C stops)", flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if not args.no_browser:
            import webbrowser

            webbrowser.open(address)
        server.serve_forever()
    except KeyboardInterrupt:
        print("crossentropy explore: stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return 0
