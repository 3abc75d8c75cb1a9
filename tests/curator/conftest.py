"""Curator test fixtures: a DynamoDB speaking the real wire protocol (moto's server mode on
127.0.0.1, started once per session — boto3 is never patched), a small seeded course, and a
progress store of either backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from curator.simulation import SimConfig, seed_course
from shared.runtime import Endpoints, environ
from shared.settings import get_settings

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
COURSE = "sim-test"
SMALL = SimConfig(learners=4, items=40, skills=6, per_skill=25)


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with environ({**AWS_ENV, "AWS_ENDPOINT_URL_DYNAMODB": url}):
        yield url
    server.stop()


@pytest.fixture
def dynamo_table(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh progress table, and the settings pointing at the dynamodb backend."""
    from curator.progress_store.dynamodb import DynamoProgressStore

    name = f"progress-{uuid.uuid4().hex[:8]}"
    store = DynamoProgressStore(name)
    store.create_table()
    monkeypatch.setenv("LESSONLOOP_PROGRESS_BACKEND", "dynamodb")
    monkeypatch.setenv("LESSONLOOP_PROGRESS_TABLE", name)
    get_settings.cache_clear()
    yield name
    store.client.delete_table(TableName=name)
    store.client.close()
    get_settings.cache_clear()


def dynamo_items(table: str, learner: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    try:
        return client.query(TableName=table, KeyConditionExpression="learner_id = :l",
                            ExpressionAttributeValues={":l": {"S": learner}})["Items"]
    finally:
        client.close()


@pytest.fixture
def course(clean: Endpoints) -> dict[str, float]:
    """A small synthetic course (6 skills, 25 questions each); question id -> hidden difficulty."""
    return seed_course(clean.database_url, COURSE, SMALL)


@pytest.fixture(params=["postgres", "dynamodb"])
def backend(request: pytest.FixtureRequest, course: dict[str, float]) -> str:
    """Each test using it runs on both progress backends (the seeded course either way)."""
    if request.param == "dynamodb":
        request.getfixturevalue("dynamo_table")
    return str(request.param)
