"""The benchmark harness end to end on a tiny bank against the session's stores: seed, one API
process, every endpoint under load, the cold path at scale, and a report with real numbers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from loadtests import bench, report
from shared.runtime import Endpoints


@pytest.mark.timeout(90)
def test_bench_writes_a_report_with_real_numbers(clean: Endpoints, tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    cfg = bench.parse(["--quick", "--bank-size", "2000", "--scale-bank", "2000", "--warm-learners", "600",
                       "--cold-learners", "40", "--depth", "30", "--seconds", "1", "--repeats", "1",
                       "--cold-requests", "15", "--warmup", "0", "--locust-seconds", "0", "--no-others",
                       "--paced-fractions", "0.25,0.5", "--paced-seconds", "1",
                       "--database-url", clean.database_url, "--redis-url", clean.redis_url,
                       "--out", str(out), "--img-dir", str(tmp_path / "img")])
    harness = bench.Bench(cfg, bench.Progress())
    try:
        harness.run()
    finally:
        shutil.rmtree(harness.work, ignore_errors=True)

    text = out.read_text()
    assert "## Lesson start vs ping on the same server process" in text
    assert "## Cold path at scale" in text
    assert "## Warm path at a fixed offered load" in text
    assert re.search(r"Its floor on this machine.*p99 \d+\.\d{3}", text)  # the bare Redis round trip
    for png in ("bench-throughput.png", "bench-latency.png", "bench-server-vs-client.png",
                "bench-cpu-per-request.png", "bench-cold-scale.png", "bench-warm-paced.png"):
        assert (tmp_path / "img" / png).stat().st_size > 5_000, png

    agg = {a["endpoint"]: a for a in report.aggregate(harness.results["http_runs"])}
    assert set(agg) == {"ping", "warm", "cold", "answer"}
    for ep, a in agg.items():
        assert a["rps"] > 0 and a["p99_ms"] > 0, ep
        assert a["errors"] == 0, (ep, a)
    assert agg["warm"]["warm"] > 0 and agg["warm"]["cold"] == 0
    assert agg["cold"]["cold"] > 0 and agg["cold"]["warm"] == 0
    assert agg["warm"]["app_p50_ms"] > 0  # Server-Timing parsed
    paced = harness.results["paced"]
    assert {r["fraction"] for r in paced["runs"]} == {0.25, 0.5}
    for r in paced["runs"]:  # every paced request is a warm start with a Server-Timing figure
        assert r["errors"] == 0 and r["cold"] == 0 and r["app_n"] == r["requests"] > 0, r
    scale = harness.results["cold_scale"][0]
    assert scale["http"]["errors"] == 0 and scale["http"]["client"]["p99_ms"] > 0
    assert scale["sql"]["execution"]["p99_ms"] > 0 and scale["sql"]["rows"] > 0
    row = re.search(r"\| 32 \| lesson start, warm \| ([\d,]+) \|", text)
    assert row and int(row.group(1).replace(",", "")) > 0
    json.dumps(harness.results, default=str)  # the raw results stay serialisable


def test_locust_thresholds_fail_the_run() -> None:
    """The quitting listener turns a breached threshold into a non-zero exit code."""
    import subprocess
    import sys

    code = (
        "from types import SimpleNamespace as NS\n"
        "from loadtests import thresholds\n"
        "class E:\n"
        "    def __init__(self, p99, fail):\n"
        "        self.num_requests, self.fail_ratio, self.name, self.method = 100, fail, 'learner: answer', 'POST'\n"
        "        self._p99 = p99\n"
        "    def get_response_time_percentile(self, q): return self._p99\n"
        "def env(p99, fail):\n"
        "    e = E(p99, fail)\n"
        "    return NS(parsed_options=NS(p99_ms=500.0, max_error_rate=0.01),\n"
        "              stats=NS(total=e, entries={('learner: answer', 'POST'): e}), process_exit_code=None)\n"
        "ok, slow, failing = env(100, 0.0), env(900, 0.0), env(100, 0.05)\n"
        "for x in (ok, slow, failing): thresholds._verdict(x)\n"
        "print(ok.process_exit_code, slow.process_exit_code, failing.process_exit_code)\n"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["None", "1", "1"], out.stderr[-2000:]
