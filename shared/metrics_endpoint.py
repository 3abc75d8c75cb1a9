"""A worker process's Prometheus endpoint. The API serves the process's registry
(`shared.metrics.REGISTRY`) at `/metrics` on its own port; a worker has no HTTP server, so what its
tasks count (dropped refill triggers, restarts after a store outage, …) is served from a thread by
prometheus_client's own WSGI server, on the kind's port (`WorkerSettings.factory_metrics_port`,
`curator_metrics_port`).

Several workers on one host must not fight over a port: a worker whose port is taken serves on the
next free one of `metrics_port_span`, and one that finds none runs without an endpoint — never a
worker that exits over its metrics. The port served is logged at start-up.
"""

from __future__ import annotations

import errno
import logging
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from shared import metrics
from shared.settings import WorkerSettings

log = logging.getLogger(__name__)


def serve(port: int, cfg: WorkerSettings) -> WSGIServer | None:
    """Serve the registry at `http://{cfg.metrics_host}:{p}/metrics` for the first free `p` of
    `port`, `port + 1`, … (`cfg.metrics_port_span` ports); the server (`.server_port`, `.shutdown()`),
    or None when `port` is 0 or none is free."""
    if port == 0:
        return None
    last = min(port + cfg.metrics_port_span, 65536)
    for candidate in range(port, last):
        try:
            server, _thread = start_http_server(candidate, addr=cfg.metrics_host, registry=metrics.REGISTRY)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            log.warning("no metrics endpoint: %s", exc, extra={"port": candidate})
            return None
        return server
    log.warning("no metrics endpoint: ports %d-%d are all taken", port, last - 1)
    return None
