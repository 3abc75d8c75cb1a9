"""Offline fitting and evaluation of the learner model (``lessonloop model eval|split|export``; the
log format and the export of Lessonloop's own answers: ``curator.response_log``).

``eval --train A --test B`` fits the global weights on A, then replays B in answer order and
predicts every answer *before* the model sees it, exactly as production would:

* item states and the skills' population states are calibrated from A's answers and keep
  updating online on B;
* learner and skill states on B start fresh (the split is learner-disjoint).

The weights are fitted on features produced by the same ``LearnerModel.update`` code the answer
path runs.  To give the fit the same item-calibration regime it meets on B, the training features
are cross-fitted: A's learners are split into folds, and each fold is replayed on items calibrated
from the other folds only (no answer ever informs its own features).  Last, the mastery readout
(``LearnerModel.mastery``) is fitted to the model's logits under the signs of ``MASTERY_SIGNS``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from curator.learner_model import FEATURE_NAMES, MASTERY_SIGNS, N_FEATURES, LearnerModel
from curator.response_log import Ids, LogError, ResponseLog, export_log, read_log, split_learners, write_log

CV_FOLDS = 5  # folds of training learners for cross-fitted item calibration
L2 = 1.0  # ridge penalty of the linear part (standardised features)
HIDDEN = 32  # ReLU units per net of the hidden layer (0 = plain logistic regression)
EPOCHS = 12
ENSEMBLE = 3  # nets trained from different seeds, merged into one net whose logit is their mean
WEIGHT_DECAY = 1e-4  # on the hidden layer (1e-3 keeps mastery monotone in the cold-start test but costs AUC: 0.7974)


# -- replay: the online code path, row by row ----------------------------------------------------
def replay(model: LearnerModel, log: ResponseLog, items: dict[int, dict[str, Any]],
           populations: dict[int, dict[str, Any]], collect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Replay ``log`` through ``model.update``; return features and online predictions per row.

    Both are taken *before* each answer is recorded, by the same ``features``/``predict`` calls
    the answer path makes.  ``items`` (by item id) and ``populations`` (by skill id) are mutated:
    they are calibrated further by every answer replayed.  Learner and skill states start fresh
    for every learner in ``log``.
    """
    n = len(log) if collect else 0
    feats = np.empty((n, N_FEATURES), dtype=np.float64)
    preds = np.empty(n, dtype=np.float64)
    learners: dict[int, dict[str, Any]] = {}
    skills: dict[tuple[int, int], dict[str, Any]] = {}
    rows = zip(log.user.tolist(), log.item.tolist(), log.skill.tolist(), log.correct.tolist(),
               log.timestamp.tolist(), log.level.tolist(), strict=False)
    for i, (u, it, sk, c, ts, lv) in enumerate(rows):
        learner = learners.get(u)
        if learner is None:
            learner = learners[u] = model.new_learner_state()
        skill = skills.get((u, sk))
        if skill is None:
            skill = skills[(u, sk)] = model.new_skill_state(lv)
        item = items.get(it)
        if item is None:
            item = items[it] = model.new_item_state(lv)
        pop = populations.get(sk)
        if pop is None:
            pop = populations[sk] = model.new_population_state()
        if collect:
            feats[i] = model.features(learner, skill, item, ts, pop)
            preds[i] = model.predict(learner, skill, item, ts, pop)
        model.update(learner, skill, item, bool(c), ts, pop)
    return feats, preds


def calibrate_items(model: LearnerModel, log: ResponseLog) -> tuple[dict[int, dict[str, Any]],
                                                                      dict[int, dict[str, Any]]]:
    """Item states (by item id) and population states (by skill id) calibrated by replaying ``log``."""
    items: dict[int, dict[str, Any]] = {}
    populations: dict[int, dict[str, Any]] = {}
    replay(model, log, items, populations, collect=False)
    return items, populations


def cross_fitted_features(model: LearnerModel, log: ResponseLog, folds: int = CV_FOLDS) -> np.ndarray:
    """Features for every training row, each fold replayed on items calibrated on the other folds."""
    users = np.unique(log.user)
    fold_of_user = dict(zip(users.tolist(), (np.arange(len(users)) % folds).tolist(), strict=False))
    fold = np.fromiter((fold_of_user[u] for u in log.user.tolist()), dtype=np.int64, count=len(log))
    X = np.empty((len(log), N_FEATURES))
    for k in range(folds):
        items, populations = calibrate_items(model, log.take(fold != k))
        X[fold == k], _ = replay(model, log.take(fold == k), items, populations, collect=True)
    return X


# -- fitting -------------------------------------------------------------------------------------
def _fit_linear(Z: np.ndarray, y: np.ndarray, l2: float, iters: int = 25) -> np.ndarray:
    """L2-regularised logistic regression on standardised columns, by Newton's method."""
    w = np.zeros(Z.shape[1])
    penalty = np.full(Z.shape[1], l2)
    penalty[0] = 0.0  # bias
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(Z @ w)))
        grad = Z.T @ (p - y) + penalty * w
        hess = (Z * (p * (1.0 - p))[:, None]).T @ Z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-7:
            break
    return w


def _fit_wide_deep(Z: np.ndarray, y: np.ndarray, w_lin: np.ndarray, hidden: int, epochs: int,
                   seed: int) -> list[np.ndarray]:
    """Linear part (warm-started) plus one ReLU layer, trained jointly by Adam on log loss."""
    rng = np.random.default_rng(seed)
    d = Z.shape[1]
    params = [w_lin.copy(), rng.normal(0.0, 1.0 / math.sqrt(d), (d, hidden)), np.zeros(hidden),
              np.zeros(hidden)]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    batch, lr, wd = 256, 3e-3, WEIGHT_DECAY
    total = epochs * ((len(Z) + batch - 1) // batch)
    t = 0
    for _ in range(epochs):
        perm = rng.permutation(len(Z))
        for start in range(0, len(Z), batch):
            idx = perm[start:start + batch]
            X, yb = Z[idx], y[idx]
            pre = X @ params[1] + params[2]
            act = np.maximum(pre, 0.0)
            p = 1.0 / (1.0 + np.exp(-(X @ params[0] + act @ params[3])))
            g = (p - yb) / len(idx)
            g_act = np.outer(g, params[3]) * (pre > 0)
            grads = [X.T @ g, X.T @ g_act + wd * params[1], g_act.sum(axis=0), act.T @ g + wd * params[3]]
            t += 1
            step = lr * 0.5 * (1.0 + math.cos(math.pi * t / total))
            for k, grad in enumerate(grads):
                m1[k] = 0.9 * m1[k] + 0.1 * grad
                m2[k] = 0.999 * m2[k] + 0.001 * grad * grad
                params[k] -= step * (m1[k] / (1 - 0.9**t)) / (np.sqrt(m2[k] / (1 - 0.999**t)) + 1e-8)
    return params


def _merge(nets: list[list[np.ndarray]]) -> list[np.ndarray]:
    """One wide-and-deep net whose logit is the mean of ``nets``' logits (hidden units side by side)."""
    k = len(nets)
    return [sum(n[0] for n in nets) / k, np.hstack([n[1] for n in nets]), np.concatenate([n[2] for n in nets]),
            np.concatenate([n[3] for n in nets]) / k]


def _fit_mastery(Z: np.ndarray, z: np.ndarray, l2: float = 1.0, sweeps: int = 500) -> np.ndarray:
    """The mastery readout: least squares of the model's logits ``z`` on the ``MASTERY_SIGNS``
    columns of ``Z``, each weight held to its sign (projected coordinate descent on the normal
    equations; l_theta's kept strictly positive so every answer moves mastery)."""
    cols = [0] + [FEATURE_NAMES.index(name) for name in MASTERY_SIGNS]
    sign = np.array([1.0, *MASTERY_SIGNS.values()])
    A = Z[:, cols] * sign
    G = A.T @ A / len(A) + np.diag([0.0] + [l2 / len(A)] * (len(cols) - 1))
    h = A.T @ z / len(A)
    low = np.zeros(len(cols))
    low[0] = -np.inf  # the bias is free
    low[1 + list(MASTERY_SIGNS).index("l_theta")] = 1e-3
    v = np.maximum(low, 0.0)
    for _ in range(sweeps):
        for k in range(len(cols)):
            v[k] = max(low[k], v[k] + (h[k] - G[k] @ v) / G[k, k])
    w = np.zeros(Z.shape[1])
    w[cols] = v * sign
    return w


def fit(train: ResponseLog, hidden: int = HIDDEN, epochs: int = EPOCHS, seed: int = 0,
        ensemble: int = ENSEMBLE) -> LearnerModel:
    """Fit the global weights on ``train`` (cross-fitted features; see the module docstring)."""
    base = LearnerModel()
    X = cross_fitted_features(base, train)
    y = train.correct.astype(np.float64)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-12] = 1.0
    mean[0], scale[0] = 0.0, 1.0  # the bias column stays 1
    Z = (X - mean) / scale
    w_lin = _fit_linear(Z, y, L2)
    model = LearnerModel({"hyper": base.hyper})
    if hidden:
        w_lin, hidden_w, hidden_b, hidden_out = _merge(
            [_fit_wide_deep(Z, y, w_lin, hidden, epochs, seed + k) for k in range(ensemble)])
        model.set_weights(mean, scale, w_lin, hidden_w, hidden_b, hidden_out)
    else:
        model.set_weights(mean, scale, w_lin)
    model.set_weights(model.mean, model.scale, model.linear, model.hidden_w, model.hidden_b, model.hidden_out,
                      _fit_mastery(Z, model.logit_from_features(X)))
    model.meta["train_rows"] = len(train)
    model.meta["train_learners"] = len(np.unique(train.user))
    return model


# -- metrics -------------------------------------------------------------------------------------
def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve by ranks (ties get their average rank)."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    sp = np.asarray(p)[order]
    ranks = np.empty(len(p))
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sp)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(sp)]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=np.float64)
    pc = np.clip(p, 1e-9, 1 - 1e-9)
    return {
        "auc": auc(y, p),
        "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
        "rmse": float(np.sqrt(np.mean((y - p) ** 2))),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
    }


def evaluate(model: LearnerModel, train: ResponseLog, test: ResponseLog) -> dict[str, float]:
    """Calibrate items on ``train`` then replay ``test``, predicting each answer before updating."""
    _, preds = replay(model, test, *calibrate_items(model, train))
    return metrics(test.correct, preds)


# -- CLI -----------------------------------------------------------------------------------------
def _cmd_eval(args: argparse.Namespace) -> int:
    ids = Ids()  # one coding of the ids for both files: an item in both is one item
    train, test = read_log(args.train, ids), read_log(args.test, ids)
    shared = np.intersect1d(np.unique(train.user), np.unique(test.user))
    t0 = time.perf_counter()
    model = fit(train)
    fit_s = time.perf_counter() - t0
    model.meta["fitted_on"] = Path(args.train).name
    t1 = time.perf_counter()
    m = evaluate(model, train, test)
    eval_s = time.perf_counter() - t1
    prior = float(train.correct.mean())
    base = metrics(test.correct, np.full(len(test), prior))
    elo = evaluate(LearnerModel(), train, test)
    print(f"train: {len(train)} rows, {len(np.unique(train.user))} learners, "
          f"{len(np.unique(train.item))} items")
    print(f"test:  {len(test)} rows, {len(np.unique(test.user))} learners "
          f"({len(shared)} also in train)")
    print(f"fit time: {fit_s:.1f} s   replay time: {eval_s:.1f} s")
    print(f"model     AUC {m['auc']:.4f}  log loss {m['log_loss']:.4f}  RMSE {m['rmse']:.4f}  "
          f"accuracy {m['accuracy']:.4f}")
    print(f"elo only  AUC {elo['auc']:.4f}  log loss {elo['log_loss']:.4f}  RMSE {elo['rmse']:.4f}  "
          f"(same states, unfitted: l_theta + s_theta - i_b)")
    print(f"constant  AUC {base['auc']:.4f}  log loss {base['log_loss']:.4f}  RMSE {base['rmse']:.4f}  "
          f"(p = train mean {prior:.4f})")
    if args.params_out:
        model.meta.update({k: round(v, 4) for k, v in m.items()})
        model.save(args.params_out)
        print(f"params written to {args.params_out}")
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    if not 0.0 < args.test_fraction < 1.0:
        raise LogError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
    log = read_log(args.file)
    train_mask, test_mask = split_learners(log, args.test_fraction, args.seed)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.file).stem
    for name, mask in (("train", train_mask), ("test", test_mask)):
        part = log.take(mask)
        path = out / f"{stem}.{name}.tsv"
        write_log(part, path)
        print(f"{path}: {len(part)} rows, {len(np.unique(part.user))} learners")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import psycopg

    from shared.ids import COURSE_ID
    from shared.runtime import resolve_endpoints
    from shared.settings import get_settings

    if args.course is not None and not COURSE_ID.fullmatch(args.course):
        raise LogError(f"--course: {args.course!r} is not a course id")
    settings = get_settings()
    if settings.progress_backend.lower() != "postgres":
        raise LogError(f"the answers are in the {settings.progress_backend} progress backend; export reads "
                       "PostgreSQL's answer_events (LESSONLOOP_PROGRESS_BACKEND=postgres)")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise LogError(f"--out: {out.parent} is not a folder")
    eps, _ = resolve_endpoints(settings)

    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(eps.database_url) as conn:
            return await export_log(conn, out, args.course)

    rows = asyncio.run(run())
    print(f"{out}: {rows} answers{f' of course {args.course}' if args.course else ''}")
    return 0


def _cmd_fsrs_eval(args: argparse.Namespace) -> int:
    from curator.scheduler import replay_revlog

    path = Path(args.file)
    if not path.is_file():
        raise LogError(f"{path}: cannot open (no such file)")
    try:
        r = replay_revlog(path, use_speed=args.use_speed)
    except (KeyError, ValueError) as exc:
        raise LogError(f"{path}: not an Anki-style review log ({exc})") from None
    q = r["recall_rate"]
    base = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    print(f"reviews: {int(r['reviews'])}, scored (card seen on an earlier day): {int(r['scored'])}, "
          f"recall rate {q:.4f}")
    print(f"FSRS      log loss {r['log_loss']:.4f}  RMSE {r['rmse']:.4f}  AUC {r['auc']:.4f}"
          f"{'  (ratings from correctness + speed)' if args.use_speed else ''}")
    print(f"constant  log loss {base:.4f}  (p = recall rate)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lessonloop model", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="fit on --train, replay --test, print AUC / log loss / RMSE")
    ev.add_argument("--train", required=True, help="response log (TSV/CSV with header)")
    ev.add_argument("--test", required=True, help="response log of other learners")
    ev.add_argument("--params-out", help="write the fitted params (JSON) here")
    ev.set_defaults(func=_cmd_eval)
    sp = sub.add_parser("split", help="learner-disjoint train/test split of a response log")
    sp.add_argument("file")
    sp.add_argument("--test-fraction", type=float, default=0.2)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out-dir", required=True)
    sp.set_defaults(func=_cmd_split)
    ex = sub.add_parser("export", help="write the recorded answers as a response log (the layout eval reads)")
    ex.add_argument("--out", required=True, help="TSV file to write")
    ex.add_argument("--course", help="one course (default: all; skill ids then read course/skill)")
    ex.set_defaults(func=_cmd_export)
    fe = sub.add_parser("fsrs-eval", help="score FSRS recall predictions on an Anki-style review log")
    fe.add_argument("file", help="CSV: card_id, review_rating, review_time, review_duration")
    fe.add_argument("--use-speed", action="store_true",
                    help="rate reviews from correctness + response time, as Lessonloop does")
    fe.set_defaults(func=_cmd_fsrs_eval)
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """Entry point for ``lessonloop model ...``; returns the exit code."""
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse has printed the usage error
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except LogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

