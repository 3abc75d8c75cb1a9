"""The short chaos run (loadtests/chaos.py, SHORT): the real stack — embedded PostgreSQL and Redis,
the API, a factory and a curator worker as child processes — under a learner load while the primary
LLM fails, both workers are SIGKILLed, Redis and then PostgreSQL are stopped and started again (with
probe learners: refilled by the curator after Redis came back, served warm while PostgreSQL is down).
Asserts the invariants, not the latencies (those are in docs/reliability.md, from `make chaos`)."""

from __future__ import annotations

import pytest

from loadtests import chaos


@pytest.mark.timeout(300)
def test_nothing_is_lost_under_load_and_faults() -> None:
    report = chaos.run(chaos.SHORT, progress=lambda _: None)
    print(chaos.render(report, "tests/chaos/test_chaos_short.py"))
    assert report["violations"] == [], report.get("folder")
    answers, served = report["answers"], report["served"]
    # Every acknowledged answer is stored exactly once, with the grade the learner was shown.
    assert answers["acknowledged"] > 100
    assert answers["stored_exactly_once"] == answers["acknowledged"]
    assert not answers["missing"] and not answers["duplicated"] and not answers["grade_mismatch"]
    # Nothing retired after its commit, nothing unaccepted, nothing unknown reached a learner.
    assert sum(1 for r in report["retires"] if r["acked"]) >= 4
    assert not served["retired_served_after_commit"] and not served["unaccepted"] and not served["unknown"]
    assert served["warm"] > 0 and served["cold"] > 0
    # Generation: the primary's failure moved work to the backup; the killed worker's batch ran again;
    # no (job, batch, seq) twice, no batch staged twice; every job finished or is resumable.
    jobs = {j["phase"]: j for j in report["jobs"]}
    assert "backup" in jobs["llm-fault"]["items_by_tier"]
    for job in report["jobs"]:
        assert job["finished_or_resumable"], job
        assert job["seq_duplicates"] == 0 and job["staged_twice"] == []
    # Secrets never logged; no process exited by itself: a worker that loses a store starts again
    # in-process (lessonloop/workers.py) instead of leaving it to the supervisor.
    assert report["secrets_in_logs"]["found"] == [] and report["secrets_in_logs"]["log_lines"] > 0
    assert report["crashes"] == [], report["crashes"]
    phases = {p["phase"]: p for p in report["phases"]}
    assert list(phases) == list(chaos.PHASES)
    # Redis down: lessons still served (cold), answers still acknowledged, nothing refused.
    assert phases["redis-down"]["cold"] > 0 and phases["redis-down"]["answers_acknowledged"] > 0
    assert phases["redis-down"]["statuses"] == {}, phases["redis-down"]["errors_by_kind"]
    # ...and once it is back the curator refills by itself: the probes' playlists were written.
    probes = report["probes"]
    assert probes["refilled_after_redis_s"] is not None, probes
    # PostgreSQL down: warm lessons still served from Redis — every probe start was warm — while
    # answers were refused (503 + Retry-After; never acknowledged and lost: checked above).
    assert probes["starts"] >= probes["learners"] and probes["warm"] == probes["starts"], probes
    assert phases["postgres-down"]["warm"] >= probes["warm"]
    assert phases["postgres-down"]["errors_by_kind"].get("503", {}).get("answer", 0) > 0
    # Both stores back: the API ready again within seconds, and answers flowing.
    assert all(s is not None and s < 10 for s in report["recovery_s"].values()), report["recovery_s"]
    assert phases["recovered"]["answers_acknowledged"] > 0
