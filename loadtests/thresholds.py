"""Pass/fail thresholds for headless locust runs: `--p99-ms` over the learner requests and
`--max-error-rate` over everything; exceeding either sets the process exit code to 1."""

from __future__ import annotations

import logging
from typing import Any

from locust import events

log = logging.getLogger(__name__)
LEARNER_PREFIX = "learner:"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--p99-ms", type=float, default=500.0, env_var="LOCUST_P99_MS",
                        help="fail the run when the p99 of any learner request exceeds this (ms)")
    parser.add_argument("--max-error-rate", type=float, default=0.01, env_var="LOCUST_MAX_ERROR_RATE",
                        help="fail the run when more than this fraction of requests failed")


def breaches(environment: Any) -> list[str]:
    opts = environment.parsed_options
    stats = environment.stats
    out = []
    total = stats.total
    if total.num_requests == 0:
        out.append("no requests were made")
    elif total.fail_ratio > opts.max_error_rate:
        out.append(f"error rate {total.fail_ratio:.2%} > {opts.max_error_rate:.2%}")
    for entry in stats.entries.values():
        if entry.name.startswith(LEARNER_PREFIX) and entry.num_requests:
            p99 = entry.get_response_time_percentile(0.99)
            if p99 > opts.p99_ms:
                out.append(f"{entry.method} {entry.name}: p99 {p99:.0f} ms > {opts.p99_ms:.0f} ms")
    return out


@events.quitting.add_listener
def _verdict(environment: Any, **_: Any) -> None:
    if environment.parsed_options is None:
        return
    failed = breaches(environment)
    for reason in failed:
        log.error("threshold exceeded: %s", reason)
    if failed:
        environment.process_exit_code = 1
    else:
        log.info("thresholds met (p99 <= %.0f ms, errors <= %.2f%%)", environment.parsed_options.p99_ms,
                 environment.parsed_options.max_error_rate * 100)
