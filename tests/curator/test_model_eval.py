"""Offline fit/eval of the learner model on a synthetic response log (no shared data needed), with
integer or text ids, and the export of Lessonloop's own answers into that layout (round-tripped into
`model eval`)."""

from __future__ import annotations

import copy
import math
import re
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest

from curator import model_eval
from curator.learner_model import N_FEATURES, LearnerModel
from shared.runtime import Endpoints
from tests.curator.conftest import COURSE
from tests.helpers import api_client, auth


def synthetic_log(path: Path, learners: int = 150, skills: int = 6, items_per_skill: int = 12,
                  seed: int = 0) -> Path:
    """Learners with hidden ability that grows with practice per skill; items with hidden difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 1.0, skills * items_per_skill)
    lines = ["user_id\titem_id\ttimestamp\tcorrect\tskill_id"]
    for user in range(learners):
        ability = rng.normal(0.0, 1.0)
        practice = np.zeros(skills)
        for skill in rng.permutation(skills)[: rng.integers(2, skills + 1)]:
            for _ in range(rng.integers(4, 15)):
                item = skill * items_per_skill + rng.integers(items_per_skill)
                logit = ability + 0.35 * practice[skill] - difficulty[item] - 0.5
                correct = int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
                practice[skill] += 1
                lines.append(f"{user}\t{item}\t0\t{correct}\t{skill}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def split_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("log")
    full = synthetic_log(root / "synthetic.tsv")
    assert model_eval.main(["split", str(full), "--test-fraction", "0.25", "--seed", "1",
                            "--out-dir", str(root)]) == 0
    return root / "synthetic.train.tsv", root / "synthetic.test.tsv"


def test_split_is_learner_disjoint_and_complete(split_logs: tuple[Path, Path]) -> None:
    train, test = (model_eval.read_log(p) for p in split_logs)
    assert not set(train.user.tolist()) & set(test.user.tolist())
    full = model_eval.read_log(split_logs[0].with_name("synthetic.tsv"))
    assert len(train) + len(test) == len(full)
    assert len(np.unique(test.user)) == round(len(np.unique(full.user)) * 0.25)


def test_eval_beats_constant_baseline(split_logs: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.json"
    code = model_eval.main(["eval", "--train", str(split_logs[0]), "--test", str(split_logs[1]),
                            "--params-out", str(params)])
    out = capsys.readouterr().out
    assert code == 0, out
    model_auc = float(re.search(r"^model\s+AUC (\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    const_auc = float(re.search(r"^constant\s+AUC (\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    model_ll = float(re.search(r"^model.*log loss (\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    const_ll = float(re.search(r"^constant.*log loss (\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert const_auc == 0.5
    assert model_auc > const_auc + 0.15
    assert model_ll < const_ll - 0.03
    loaded = LearnerModel.load(params)
    assert loaded.meta["auc"] == pytest.approx(model_auc, abs=1e-4)


def test_replay_features_and_predictions_match_the_online_path(split_logs: tuple[Path, Path]) -> None:
    train, test = (model_eval.read_log(p) for p in split_logs)
    model = model_eval.fit(train, hidden=8, epochs=2, ensemble=2)
    items, populations = model_eval.calibrate_items(model, train)
    online_items = copy.deepcopy(items)
    feats, preds = model_eval.replay(model, test, items, populations)
    # the answer path, by hand: fresh learner/skill states, shared item states, and the skill's
    # population computed from its items' states (as the serving cache does), predict then update
    skill_of = dict(zip(np.concatenate([train.item, test.item]).tolist(),
                        np.concatenate([train.skill, test.skill]).tolist(), strict=False))
    learners: dict[int, dict] = {}
    skills: dict[tuple[int, int], dict] = {}
    for i, (u, it, sk, c) in enumerate(zip(test.user.tolist(), test.item.tolist(), test.skill.tolist(),
                                           test.correct.tolist(), strict=False)):
        learner = learners.setdefault(u, model.new_learner_state())
        skill = skills.setdefault((u, sk), model.new_skill_state(0))
        item = online_items.setdefault(it, model.new_item_state(0))
        pop = model.population(state for k, state in online_items.items() if skill_of[k] == sk)
        assert model.predict(learner, skill, item, 0.0, pop) == pytest.approx(preds[i], abs=1e-9)
        assert model.features(learner, skill, item, 0.0, pop) == pytest.approx(feats[i].tolist(), abs=1e-9)
        model.update(learner, skill, item, bool(c), 0.0)
    assert online_items == items
    # the incrementally updated populations equal the sums of their items' states
    for sk, pop in populations.items():
        summed = model.population(state for k, state in items.items() if skill_of[k] == sk)
        assert {k: v for k, v in pop.items() if k != "bn"} == {k: v for k, v in summed.items() if k != "bn"}
        assert pop["bn"] == pytest.approx(summed["bn"], abs=1e-6)
    # the vectorised logit used in fitting agrees with the per-answer prediction
    vector_p = 1.0 / (1.0 + np.exp(-model.logit_from_features(feats)))
    np.testing.assert_allclose(np.clip(vector_p, 1e-6, 1 - 1e-6), preds, atol=1e-9)
    assert feats.shape == (len(test), N_FEATURES)
    assert model.hidden_w.shape == (N_FEATURES, 16)  # two 8-unit nets merged into one


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200), 1)  # plenty of ties
    pos, neg = p[y == 1], p[y == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert model_eval.auc(y, p) == pytest.approx(pairs / (len(pos) * len(neg)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user_id\titem_id\tcorrect\n1\t2\t1\n", "missing column 'skill_id'"),
        ("user_id\titem_id\tcorrect\tskill_id\n1\t2\t1\t3\n1\t \t0\t3\n", "column 'item_id' row 3: empty id"),
        ("user_id\titem_id\tcorrect\tskill_id\ttimestamp\nu1\tq-2\t1\tser\t1700000000\nu1\tq-3\t0\tser\tlate\n",
         "column 'timestamp' row 3: expected an integer, got 'late'"),
        ("user_id\titem_id\tcorrect\tskill_id\nu1\tq-2\t1\n", "row 2 has 3 fields, expected 4"),
        ("user_id\titem_id\tcorrect\tskill_id\n1\t2\t1\t3\n1\t2\t1\t3\n1\t2\t2\t3\n",
         "column 'correct' row 4: expected 0 or 1, got '2'"),
        ("user_id,item_id,correct,skill_id\n1,2,yes,3\n", "column 'correct' row 2: expected an integer"),
        ("user_id\titem_id\tcorrect\tskill_id\n", "no data rows"),
    ],
)
def test_bad_input_names_column_and_row(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        content: str, message: str) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text(content)
    good = synthetic_log(tmp_path / "good.tsv", learners=5)
    assert model_eval.main(["eval", "--train", str(bad), "--test", str(good)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_missing_file_and_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert model_eval.main(["eval", "--train", str(tmp_path / "nope.tsv"), "--test", "x"]) == 2
    assert "cannot open" in capsys.readouterr().err
    assert model_eval.main(["split", str(tmp_path / "x.tsv"), "--test-fraction", "1.5",
                            "--out-dir", str(tmp_path)]) == 2
    assert "--test-fraction" in capsys.readouterr().err
    assert model_eval.main(["eval"]) == 2


def _as_text_ids(src: Path, dst: Path) -> Path:
    """The same log with Lessonloop-style ids: learner names, UUID question ids, skill names."""
    lines = src.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        u, it, ts, c, sk = line.split("\t")
        out.append(f"learner-{u}\t{uuid.uuid5(uuid.NAMESPACE_URL, it)}\t{ts}\t{c}\tskill-{sk}")
    dst.write_text("\n".join(out) + "\n")
    return dst


def test_text_ids_evaluate_exactly_as_integer_ids(split_logs: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    full = split_logs[0].with_name("synthetic.tsv")
    text = _as_text_ids(full, tmp_path / "text.tsv")
    assert model_eval.main(["split", str(text), "--test-fraction", "0.25", "--seed", "1",
                            "--out-dir", str(tmp_path)]) == 0
    # the same learners on each side (learners appear in id order, so their codes sort alike), ids kept
    for name, int_path in (("train", split_logs[0]), ("test", split_logs[1])):
        as_text = _as_text_ids(int_path, tmp_path / f"expected.{name}.tsv").read_text()
        assert (tmp_path / f"text.{name}.tsv").read_text() == as_text
    capsys.readouterr()
    outputs = []
    for train, test in (split_logs, (tmp_path / "text.train.tsv", tmp_path / "text.test.tsv")):
        assert model_eval.main(["eval", "--train", str(train), "--test", str(test)]) == 0
        outputs.append([line for line in capsys.readouterr().out.splitlines() if "AUC" in line])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3
    # one coding for both files: an item in train and test is one item
    ids = model_eval.Ids()
    train, test = (model_eval.read_log(tmp_path / f"text.{n}.tsv", ids) for n in ("train", "test"))
    assert set(train.item.tolist()) & set(test.item.tolist())
    assert ids.name("item_id", int(train.item[0])) == (tmp_path / "text.train.tsv").read_text().split("\n")[1].split(
        "\t")[1]


def test_export_round_trips_into_eval(course: dict[str, float], clean: Endpoints, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Answers recorded by the answer path, plus a population of synthetic ones, exported from
    answer_events in the layout `eval` reads, split and evaluated."""
    headers = auth("learner", "api-learner")
    with api_client() as client:
        lesson = client.post(f"/v1/courses/{COURSE}/lessons", headers=headers).json()
        for item in lesson["items"]:
            r = client.post(f"/v1/lessons/{lesson['lesson_id']}/answers", headers=headers, json={
                "item_id": item["item_id"], "answer": "a", "attempt_id": f"a-{item['item_id']}", "response_ms": 900})
            assert r.status_code == 200, r.text
    rng = np.random.default_rng(5)
    with psycopg.connect(clean.database_url) as conn:
        bank = conn.execute("SELECT id, skill_id FROM questions WHERE course_id = %s ORDER BY id",
                            (COURSE,)).fetchall()
        for u in range(40):
            lesson_id, ability = uuid.uuid4(), rng.normal()
            conn.execute("INSERT INTO lessons (id, learner_id, course_id, source, items, status) "
                         "VALUES (%s, %s, %s, 'warm', '[]', 'served')", (lesson_id, f"sim-{u}", COURSE))
            for k, j in enumerate(rng.choice(len(bank), 15, replace=False)):
                qid, skill = bank[int(j)]
                correct = bool(rng.random() < 1 / (1 + math.exp(-(ability - course[str(qid)]))))
                conn.execute("INSERT INTO answer_events (learner_id, attempt_id, lesson_id, item_id, question_id, "
                             "course_id, skill_id, answer, correct, response_ms) "
                             "VALUES (%s, %s, %s, %s, %s, %s, %s, 'a', %s, 1000)",
                             (f"sim-{u}", f"t-{k}", lesson_id, str(k), qid, COURSE, skill, correct))
        stored = conn.execute("SELECT e.learner_id, e.question_id::text, e.correct::int, e.skill_id, q.level_rank "
                              "FROM answer_events e JOIN questions q ON q.id = e.question_id ORDER BY e.id").fetchall()
    out = tmp_path / "answers.tsv"
    assert model_eval.main(["export", "--out", str(out), "--course", COURSE]) == 0
    assert f"{len(stored)} answers" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert lines[0] == "user_id\titem_id\ttimestamp\tcorrect\tskill_id\tlevel"
    assert [tuple(line.split("\t")[i] for i in (0, 1, 3, 4, 5)) for line in lines[1:]] == [
        (learner, question, str(c), skill, str(level)) for learner, question, c, skill, level in stored]
    assert model_eval.main(["export", "--out", str(tmp_path / "all.tsv")]) == 0  # every course: course/skill
    assert (tmp_path / "all.tsv").read_text().splitlines()[1].split("\t")[4] == f"{COURSE}/{stored[0][3]}"
    assert model_eval.main(["split", str(out), "--test-fraction", "0.3", "--seed", "2",
                            "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert model_eval.main(["eval", "--train", str(tmp_path / "answers.train.tsv"),
                            "--test", str(tmp_path / "answers.test.tsv")]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^model\s+AUC \d\.\d{4}", printed, re.MULTILINE), printed
    assert model_eval.main(["export", "--out", str(tmp_path / "x.tsv"), "--course", "Bad Course"]) == 2
    assert "--course" in capsys.readouterr().err
