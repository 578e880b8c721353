"""`tminus toolkit serve SITE`: preview a written site at http://127.0.0.1:PORT/.

The standard library's file server, bound to the loopback address only: a preview for
the person building the site, not a web host (publish the folder on any static host).
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path
from typing import Any

from content.errors import TminusError
from scheduler.toolkit.site import MARKER


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass                            # one line per request drowns the URL to open

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")   # a rebuilt site shows at once
        super().end_headers()


def make_server(site: Path, *, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server for `site` (not yet serving); port 0 picks a free one."""
    if not (site / "index.html").is_file() or not (site / MARKER).is_file():
        raise TminusError(f"{site}: not a toolkit site; write one with "
                          f"`tminus toolkit CAMPAIGN-FOLDER --output {site}`")
    if not 0 <= port <= 65535:
        raise TminusError(f"--port {port}: choose a port from 1024 to 65535 (0: any free one)")
    handler = functools.partial(_Quiet, directory=str(site))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise TminusError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror or e}); "
                          "try another --port") from None


def url_of(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"
