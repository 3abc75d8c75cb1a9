"""Offline fit/eval of the learner model on a synthetic response log (no shared data needed)."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest

from curator import model_eval
from curator.learner_model import N_FEATURES, LearnerModel


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
        ("user_id\titem_id\tcorrect\tskill_id\n1\t2\t1\t3\n1\tx7\t0\t3\n",
         "column 'item_id' row 3: expected an integer, got 'x7'"),
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
