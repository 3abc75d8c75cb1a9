"""The DynamoDB progress backend: one table, partition key ``learner_id`` (S), sort key ``seq`` (S).

Items of one learner (all in one partition, so a learner's whole history is one Query):

| seq | holds |
| --- | --- |
| ``STATE#<course>`` | learner state (JSON), ``ver`` (optimistic-lock version) |
| ``SKILL#<course>#<skill>`` | skill state and FSRS card (JSON), mastery, attempts, correct, streak, due_at, last_seen |
| ``ANS#<attempt_id>`` | one answer event |
| ``LESSON#<lesson_id>#<item_id>`` | the answer of that item (guards "one answer per item", lists a lesson's answers) |
| ``TOTALS#<course>`` | answer and correct counters (kept by a reset, like the answer history) |

A SKILL item's ``streak`` and ``typical_logit`` copy its skill state's, for the planning read's projection.

An answer is one TransactWriteItems: the ANS and LESSON items are conditional puts
(``attribute_not_exists``), so the same attempt id twice records once and an item cannot be answered
twice; the STATE put is conditional on the version read, so two concurrent answers of one learner
cannot lose an update — the loser re-reads and recomputes (``MAX_OCC_TRIES``).

boto3 is synchronous: each call runs in a worker thread (``asyncio.to_thread``). Retries of throttling
and transient errors are boto3's own, in its ``standard`` mode (``BOTO_MAX_ATTEMPTS`` attempts with
exponential backoff); region, credentials and endpoint come from AWS's own variables
(``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_DYNAMODB``…).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from curator.learner_model import TYPICAL_LOGIT
from curator.progress_store import (
    AnswerEvent,
    AttemptConflict,
    Compute,
    PlanningState,
    Recorded,
    SkillBrief,
    SkillRecord,
)

BOTO_MAX_ATTEMPTS = 4
MAX_OCC_TRIES = 8
PLANNING_CONCURRENCY = 16

Item = dict[str, dict[str, Any]]


def _s(v: str) -> dict[str, str]:
    return {"S": v}


def _n(v: float | int) -> dict[str, str]:
    return {"N": repr(v) if isinstance(v, float) else str(v)}


def _j(v: Any) -> dict[str, str]:
    return {"S": json.dumps(v, separators=(",", ":"))}


def _ts(v: datetime | None) -> float | None:
    return v.timestamp() if v is not None else None


def _dt(item: Item, key: str) -> datetime | None:
    return datetime.fromtimestamp(float(item[key]["N"]), UTC) if key in item else None


def _plain(item: Item) -> dict[str, Any]:
    """A DynamoDB item as plain JSON values (JSON-encoded attributes decoded)."""
    out: dict[str, Any] = {}
    for k, v in item.items():
        (t, x), = v.items()
        if t == "N":
            out[k] = float(x) if any(c in x for c in ".eE") else int(x)
        elif t == "S" and k in ("state", "card"):
            out[k] = json.loads(x)
        elif t == "NULL":
            out[k] = None
        else:
            out[k] = x
    return out


def state_key(course: str) -> str:
    return f"STATE#{course}"


def skill_key(course: str, skill: str) -> str:
    return f"SKILL#{course}#{skill}"


def answer_key(attempt: str) -> str:
    return f"ANS#{attempt}"


def lesson_item_key(lesson: str, item: str) -> str:
    return f"LESSON#{lesson}#{item}"


def totals_key(course: str) -> str:
    return f"TOTALS#{course}"


class DynamoProgressStore:
    backend = "dynamodb"

    def __init__(self, table: str, client: Any | None = None) -> None:
        self.table = table
        self.client = client or boto3.session.Session().client(
            "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": BOTO_MAX_ATTEMPTS}))

    # --- table ----------------------------------------------------------------------------------
    def create_table(self) -> None:
        """Create the table if it does not exist (tests and local runs; production has Terraform's)."""
        try:
            self.client.create_table(
                TableName=self.table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "learner_id", "AttributeType": "S"},
                                      {"AttributeName": "seq", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "learner_id", "KeyType": "HASH"},
                           {"AttributeName": "seq", "KeyType": "RANGE"}])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 0.2})

    # --- low-level helpers (synchronous; called in threads) -------------------------------------------
    def _get_many(self, learner: str, seqs: list[str]) -> dict[str, Item]:
        keys = [{"learner_id": _s(learner), "seq": _s(s)} for s in seqs]
        out: dict[str, Item] = {}
        while keys:
            resp = self.client.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})
            for item in resp["Responses"].get(self.table, []):
                out[item["seq"]["S"]] = item
            keys = resp.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
        return out

    def _query(self, learner: str, prefix: str, projection: str | None = None) -> list[Item]:
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True,
                                  "KeyConditionExpression": "learner_id = :l",
                                  "ExpressionAttributeValues": {":l": _s(learner)}}
        if prefix:
            kwargs["KeyConditionExpression"] += " AND begins_with(seq, :p)"
            kwargs["ExpressionAttributeValues"][":p"] = _s(prefix)
        if projection:
            kwargs["ProjectionExpression"] = projection
        items: list[Item] = []
        while True:
            resp = self.client.query(**kwargs)
            items.extend(resp["Items"])
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _delete(self, learner: str, seqs: list[str]) -> None:
        requests = [{"DeleteRequest": {"Key": {"learner_id": _s(learner), "seq": _s(s)}}} for s in seqs]
        while requests:
            batch, requests = requests[:25], requests[25:]
            resp = self.client.batch_write_item(RequestItems={self.table: batch})
            requests.extend(resp.get("UnprocessedItems", {}).get(self.table, []))

    @staticmethod
    def _skill(item: Item) -> SkillRecord:
        return SkillRecord(state=json.loads(item["state"]["S"]),
                           card=json.loads(item["card"]["S"]) if "card" in item else None,
                           mastery=float(item["mastery"]["N"]), attempts=int(item["attempts"]["N"]),
                           correct=int(item["correct"]["N"]), due_at=_dt(item, "due_at"),
                           last_seen_at=_dt(item, "last_seen"))

    # --- answers ----------------------------------------------------------------------------------
    def _record(self, e: AnswerEvent, compute: Compute) -> Recorded:
        pk = _s(e.learner_id)
        for _ in range(MAX_OCC_TRIES):
            got = self._get_many(e.learner_id, [state_key(e.course_id), skill_key(e.course_id, e.skill_id),
                                                answer_key(e.attempt_id)])
            prior = got.get(answer_key(e.attempt_id))
            if prior is not None:
                return _duplicate(prior, e)
            state_item = got.get(state_key(e.course_id))
            skill_item = got.get(skill_key(e.course_id, e.skill_id))
            learner = json.loads(state_item["state"]["S"]) if state_item else None
            update = compute(learner, self._skill(skill_item) if skill_item else None)
            ver = int(state_item["ver"]["N"]) if state_item else 0
            now = time.time()
            sk = update.skill
            skill_attrs: Item = {
                "learner_id": pk, "seq": _s(skill_key(e.course_id, e.skill_id)), "state": _j(sk.state),
                "mastery": _n(float(sk.mastery)), "attempts": _n(sk.attempts), "correct": _n(sk.correct),
                "streak": _n(int(sk.state.get("streak", 0))), "last_seen": _n(now),
                "course_id": _s(e.course_id), "skill_id": _s(e.skill_id)}
            if sk.state.get(TYPICAL_LOGIT) is not None:
                skill_attrs["typical_logit"] = _n(float(sk.state[TYPICAL_LOGIT]))
            if sk.card is not None:
                skill_attrs["card"] = _j(sk.card)
            if sk.due_at is not None:
                skill_attrs["due_at"] = _n(sk.due_at.timestamp())
            answer_attrs: Item = {
                "lesson_id": _s(str(e.lesson_id)), "item_id": _s(e.item_id), "question_id": _s(str(e.question_id)),
                "course_id": _s(e.course_id), "skill_id": _s(e.skill_id), "answer": _s(e.answer),
                "correct": {"BOOL": e.correct}, "response_ms": _n(e.response_ms),
                "p_correct": _n(float(update.p_correct)), "at": _n(now), "attempt_id": _s(e.attempt_id)}
            state_cond = "attribute_not_exists(seq)" if state_item is None else "ver = :v"
            state_put: dict[str, Any] = {
                "TableName": self.table, "ConditionExpression": state_cond,
                "Item": {"learner_id": pk, "seq": _s(state_key(e.course_id)), "state": _j(update.learner),
                         "ver": _n(ver + 1), "course_id": _s(e.course_id)}}
            if state_item is not None:
                state_put["ExpressionAttributeValues"] = {":v": _n(ver)}
            items = [
                {"Put": state_put},
                {"Put": {"TableName": self.table, "Item": skill_attrs}},
                {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(seq)",
                         "Item": {"learner_id": pk, "seq": _s(answer_key(e.attempt_id)), **answer_attrs}}},
                {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(seq)",
                         "Item": {"learner_id": pk, "seq": _s(lesson_item_key(str(e.lesson_id), e.item_id)),
                                  **answer_attrs}}},
                {"Update": {"TableName": self.table,
                            "Key": {"learner_id": pk, "seq": _s(totals_key(e.course_id))},
                            "UpdateExpression": "ADD answers :one, correct :c",
                            "ExpressionAttributeValues": {":one": _n(1), ":c": _n(int(e.correct))}}},
            ]
            try:
                self.client.transact_write_items(TransactItems=items)
                return Recorded(correct=e.correct, duplicate=False, p_correct=update.p_correct)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                    continue  # the attempt was recorded meanwhile: the next read returns the duplicate
                if len(codes) > 3 and codes[3] == "ConditionalCheckFailed":
                    raise AttemptConflict(f"item '{e.item_id}' was already answered with another attempt_id") from exc
                # the state changed under us (or a transaction conflict): re-read and recompute
        raise AttemptConflict(f"attempt_id '{e.attempt_id}' met too many concurrent updates; retry")

    async def record_answer(self, event: AnswerEvent, compute: Compute) -> Recorded:
        return await asyncio.to_thread(self._record, event, compute)

    # --- reads ------------------------------------------------------------------------------------
    async def skill_record(self, learner_id: str, course_id: str, skill_id: str) -> SkillRecord | None:
        got = await asyncio.to_thread(self._get_many, learner_id, [skill_key(course_id, skill_id)])
        item = got.get(skill_key(course_id, skill_id))
        return self._skill(item) if item else None

    async def course_state(self, learner_id: str, course_id: str) -> dict[str, Any] | None:
        got = await asyncio.to_thread(self._get_many, learner_id, [state_key(course_id)])
        item = got.get(state_key(course_id))
        return json.loads(item["state"]["S"]) if item else None

    async def skill_records(self, learner_id: str, course_id: str) -> dict[str, SkillRecord]:
        items = await asyncio.to_thread(self._query, learner_id, f"SKILL#{course_id}#")
        return {i["skill_id"]["S"]: self._skill(i) for i in items}

    def _planning(self, learner: str, course: str) -> PlanningState:
        items = self._query(learner, f"SKILL#{course}#",
                            "skill_id, mastery, attempts, due_at, last_seen, streak, typical_logit")
        got = self._get_many(learner, [state_key(course)])
        state = got.get(state_key(course))
        ps = PlanningState(json.loads(state["state"]["S"]) if state else None)
        for i in items:
            ps.skills[i["skill_id"]["S"]] = SkillBrief(
                float(i["mastery"]["N"]), int(i["attempts"]["N"]),
                float(i["due_at"]["N"]) if "due_at" in i else None,
                float(i["last_seen"]["N"]) if "last_seen" in i else None,
                int(i["streak"]["N"]) if "streak" in i else 0,
                float(i["typical_logit"]["N"]) if "typical_logit" in i else None)
        return ps

    async def planning_states(self, pairs: list[tuple[str, str]], *,
                              conn: Any = None, seen: bool = True) -> dict[tuple[str, str], PlanningState]:
        """One Query + one GetItem per learner, up to PLANNING_CONCURRENCY in flight (seen questions
        live in PostgreSQL with the lessons: the batch refill reads them there)."""
        sem = asyncio.Semaphore(PLANNING_CONCURRENCY)

        async def one(pair: tuple[str, str]) -> PlanningState:
            async with sem:
                return await asyncio.to_thread(self._planning, *pair)

        states = await asyncio.gather(*(one(p) for p in pairs))
        return {p: s for p, s in zip(pairs, states, strict=True) if s.learner is not None or s.skills}

    async def lesson_answers(self, learner_id: str, lesson_id: str) -> list[dict[str, Any]]:
        items = await asyncio.to_thread(self._query, learner_id, f"LESSON#{lesson_id}#")
        rows = [_plain(i) for i in items]
        rows.sort(key=lambda r: r["at"])
        return [{"item_id": r["item_id"], "question_id": r["question_id"], "skill_id": r["skill_id"],
                 "correct": r["correct"] == "True" or r["correct"] is True, "response_ms": r["response_ms"]}
                for r in rows]

    async def totals(self, learner_id: str, course_id: str) -> dict[str, int]:
        got = await asyncio.to_thread(self._get_many, learner_id, [totals_key(course_id)])
        item = got.get(totals_key(course_id))
        if item is None:
            return {"answers": 0, "correct": 0}
        return {"answers": int(item["answers"]["N"]), "correct": int(item["correct"]["N"])}

    async def courses(self, learner_id: str) -> list[str]:
        items = await asyncio.to_thread(self._query, learner_id, "STATE#", "seq")
        return sorted(i["seq"]["S"].split("#", 1)[1] for i in items)

    # --- the learner's rights -----------------------------------------------------------------------
    def _reset(self, learner: str, course: str | None) -> None:
        if course is None:
            seqs = [i["seq"]["S"] for p in ("STATE#", "SKILL#") for i in self._query(learner, p, "seq")]
        else:
            seqs = [state_key(course)] + [i["seq"]["S"] for i in self._query(learner, f"SKILL#{course}#", "seq")]
        self._delete(learner, seqs)

    async def reset(self, learner_id: str, course_id: str | None) -> None:
        await asyncio.to_thread(self._reset, learner_id, course_id)

    async def export(self, learner_id: str) -> dict[str, list[dict[str, Any]]]:
        items = [_plain(i) for i in await asyncio.to_thread(self._query, learner_id, "")]
        by_prefix: dict[str, list[dict[str, Any]]] = {"answers": [], "skills": [], "courses": [], "totals": []}
        names = {"ANS": "answers", "SKILL": "skills", "STATE": "courses", "TOTALS": "totals"}
        for it in items:
            name = names.get(it["seq"].split("#", 1)[0])
            if name:
                by_prefix[name].append(it)
        by_prefix["answers"].sort(key=lambda r: r.get("at", 0))
        return by_prefix

    def _erase(self, learner: str) -> None:
        self._delete(learner, [i["seq"]["S"] for i in self._query(learner, "", "seq")])

    async def erase(self, learner_id: str) -> None:
        await asyncio.to_thread(self._erase, learner_id)

    async def close(self) -> None:
        self.client.close()


def _duplicate(prior: Item, e: AnswerEvent) -> Recorded:
    if prior["lesson_id"]["S"] != str(e.lesson_id) or prior["item_id"]["S"] != e.item_id:
        raise AttemptConflict(f"attempt_id '{e.attempt_id}' was already used for another item")
    return Recorded(correct=bool(prior["correct"]["BOOL"]), duplicate=True, answer=prior["answer"]["S"])
