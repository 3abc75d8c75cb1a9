"""The batch refill's planning (`refill._plan_batch`) decides exactly what the per-learner path does:
the same skills (`_choose`: the full model's `typical_logit` for new skills, which the batch computes
from two halves), the same questions drawn from the same random sequence — checked on a synthetic
course without any store."""

from __future__ import annotations

import json
import random
import uuid

from curator import planner, refill
from curator.bank_index import build_index
from curator.learner_model import LearnerModel
from curator.progress_store import PlanningState, SkillBrief
from shared.settings import get_settings

NOW = 1.8e9


def _course(rng: random.Random, model: LearnerModel) -> tuple[list[dict], list[tuple]]:
    skills = [{"id": f"s{i}", "level_rank": i // 3, "prerequisites": [f"s{i - 1}"] if i % 3 else []} for i in range(9)]
    bank = []
    for k in range(900):
        sid = f"s{k % 9}"
        item = model.new_item_state(k % 9 // 3) | {"n": rng.randrange(0, 40)}
        item["nc"], item["b"] = int(item["n"] * rng.uniform(0.3, 0.9)), rng.gauss(0, 1)
        bank.append((str(uuid.UUID(int=rng.getrandbits(128))), sid, k % 9 // 3, "multiple_choice",
                     {"prompt": f"q{k}", "choices": ["a", "b"]}, item if rng.random() < 0.9 else None))
    return skills, bank


def _state(rng: random.Random, model: LearnerModel, qids: list[str]) -> PlanningState | None:
    if rng.random() < 0.1:
        return None
    learner = model.new_learner_state() | {"n": rng.randrange(0, 200), "theta": rng.gauss(0, 1)}
    briefs = {f"s{i}": SkillBrief(rng.betavariate(4, 2), rng.randrange(1, 20), NOW + rng.uniform(-2e5, 2e5),
                                  NOW - rng.uniform(0, 1e6), rng.randrange(-3, 7),
                                  rng.gauss(1, 1) if rng.random() < 0.8 else None)  # None: stored before it was kept
              for i in range(rng.randrange(0, 9))}
    return PlanningState(json.dumps(learner) if rng.random() < 0.9 else None, briefs,
                         set(rng.sample(qids, rng.randrange(0, 60))))


def test_batch_planning_matches_the_per_learner_path() -> None:
    rng, model = random.Random(3), LearnerModel.load()
    skills, bank = _course(rng, model)
    index = build_index("c", skills, bank, planner.Difficulty(model))
    qids = [r[0] for r in bank]
    pairs = [(f"l{k}", "c") for k in range(300)]
    states = {p: st for p in pairs if (st := _state(rng, model, qids)) is not None}
    settings = get_settings()
    size, depth = settings.serving.lesson_size, settings.serving.playlist_depth

    deps = refill.CuratorDeps(settings=settings, pool=None, playlist_redis=None, model=model, rng=random.Random(9))
    rows, writes, _ = refill._plan_batch(deps, {"c": index}, pairs, states, NOW)
    batch = [[(q["question_id"], q["skill"]) for q in json.loads(items)] for _, _, _, _, items in rows]

    expected = []
    deps = refill.CuratorDeps(settings=settings, pool=None, playlist_redis=None, model=model, rng=random.Random(9))
    for p in pairs:
        st = states.get(p)
        chosen, width = refill._choose(deps, index.curriculum, st, NOW, index.populations)
        for lesson in planner.pick_lessons(index.pools, chosen, seen=st.seen if st else set(), lessons=depth,
                                           size=size, target=refill._target(deps), rng=deps.rng, width=width):
            expected.append([(index.pools[pk.skill].ids[pk.at], pk.skill) for pk in lesson])
    assert batch == expected
    assert sum(len(w[2]) for w in writes) == len(rows) > 500
