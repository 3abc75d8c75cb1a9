"""The warm path on a real Redis Cluster (three primaries started from the embedded Redis binary):
playlists written by the curator's script, retirement written into every bucket's retired set, and
lessons popped through the slot-routing RESP client — every key one command touches in one slot."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from curator.playlist_writer import replace_playlist
from review_portal.retirement import mark_retired_everywhere
from serving.resp_cluster import key_slot
from serving.warm_path import WarmPath
from shared import constants
from shared.runtime import _redis_server_binary

COURSE = "spanish-a1-b1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[int]]:
    folder = Path(tempfile.mkdtemp(prefix="lessonloop-cluster-"))
    ports = [cluster_port() for _ in range(3)]
    procs = []
    for port in ports:
        node = folder / str(port)
        node.mkdir()
        procs.append(subprocess.Popen(
            [str(_redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL))
    cli = _redis_server_binary().with_name("redis-cli")
    try:
        for port in ports:
            _wait_ping(port)
        subprocess.run([str(cli), "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while redis.Redis(host="127.0.0.1", port=ports[0]).cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "cluster did not become ok"
            time.sleep(0.1)
        yield ports
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free and valid too."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait_ping(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                return
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def lesson(learner: str, qids: list[str]) -> dict[str, object]:
    return {"lesson_id": str(uuid.uuid4()), "learner_id": learner, "course": COURSE, "source": "warm",
            "items": [{"item_id": str(i), "question_id": q, "skill": "greetings", "type": "cloze", "prompt": "p"}
                      for i, q in enumerate(qids, start=1)]}


def test_keys_of_one_learner_share_a_slot_and_learners_spread_over_nodes() -> None:
    for n in range(200):
        learner = f"learner-{n}"
        bucket = constants.learner_bucket(learner)
        slot = key_slot(constants.playlist_key(learner, COURSE))
        assert slot == key_slot(constants.retired_key(bucket)) == key_slot(constants.erased_key(learner))
    assert len({key_slot(constants.retired_key(b)) * 3 // 16384 for b in range(constants.PLAYLIST_BUCKETS)}) == 3


def test_warm_path_on_a_cluster(cluster: list[int]) -> None:
    async def run() -> None:
        rc = aioredis.RedisCluster(host="127.0.0.1", port=cluster[0])
        warm = WarmPath(f"redis://127.0.0.1:{cluster[1]}", cluster=True)
        try:
            learners = [f"cl-{n}-{uuid.uuid4().hex[:4]}" for n in range(40)]
            retired_q = str(uuid.uuid4())
            for learner in learners:
                await replace_playlist(rc, learner, COURSE, [lesson(learner, [str(uuid.uuid4()), retired_q]),
                                                             lesson(learner, [str(uuid.uuid4())])])
            await mark_retired_everywhere(rc, uuid.UUID(retired_q))
            popped = await asyncio.gather(*[warm.pop(learner, COURSE) for learner in learners])
            for result in popped:
                assert result is not None
                _element, retired, remaining = result
                assert retired == [retired_q] and remaining == 1
            nodes = {warm.client.slots[key_slot(constants.playlist_key(lr, COURSE))] for lr in learners}
            assert len(nodes) == 3, "the learners' playlists live on every primary"
            second = await asyncio.gather(*[warm.pop(learner, COURSE) for learner in learners])
            assert all(r is not None and r[1] == [] and r[2] == 0 for r in second)
            assert await warm.pop(learners[0], COURSE) is None
        finally:
            await warm.aclose()
            await rc.aclose()

    asyncio.run(run())
