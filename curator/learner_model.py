"""The online learner model: P(correct) for a learner on an item, updated on every answer.

Four small JSON-serialisable states carry everything the model knows:

* learner state (per learner x course): Elo abilities, answer counts, recency-weighted accuracy,
  a window of recent outcomes, global streak, accuracy on first contact with a skill;
* skill state (per learner x skill): an Elo offset for the skill, PFA success/failure counts,
  recency-weighted accuracy, streak, recency of the last attempt (by answer count and by clock);
* item state (per question): Elo difficulty calibrated from everyone's answers, attempt counts,
  its success rate in three learner contexts (first try of the skill, after a right answer on it,
  after a wrong one, after a run of right / wrong answers on it) and among weaker / stronger learners;
* population state (per course x skill): the same counters summed over the skill's items — how the
  whole population does on the skill in each context.  It needs no storage of its own: it is the sum
  of the skill's item states (``population``), which callers cache, and ``update`` keeps it current.

``features`` turns the states into a fixed-length vector.  The prediction is a logistic
regression over that vector plus one small hidden layer (a "wide and deep" logit), whose weights
live in the params file ``curator/model_params.json`` fitted by ``curator.model_eval``.
``update`` only moves counters and Elo estimates, never reading the fitted weights, so offline
feature extraction is exactly this code replayed.  Why this design, and measured figures:
docs/learner-model.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

DEFAULT_PARAMS_PATH = Path(__file__).with_name("model_params.json")

#: Weight of the newest answer in the recency-weighted accuracies, fast to slow.
LEARNER_EMA_RATES = (0.5, 0.2, 0.05)
SKILL_EMA_RATES = (0.5, 0.15)
STREAK_CAP = 6
WINDOW = 10  # answers in the learner's recent-outcome window
SECONDS_PER_DAY = 86400.0
ABILITY_EDGES = (1.0,)  # l_theta edges of the ability buckets that items keep success rates for
N_ABILITY = len(ABILITY_EDGES) + 2  # bucket 0: learners with fewer than 5 answers
RUN_CAP = 3  # signed streak on the skill is bucketed into -RUN_CAP..RUN_CAP
N_RUN = 2 * RUN_CAP + 1
P_MIN = 1e-6
#: The list counters an item state and a population state share (a population sums its items').
POPULATION_LIST_KEYS = ("ctx_n", "ctx_nc", "ab_n", "ab_nc", "run_n", "run_nc")

FEATURE_NAMES = (
    "bias",
    # learner, across skills
    "l_theta",  # Elo ability, step shrinking with experience
    "l_theta_fast",  # Elo ability with a constant step: tracks recent form
    "l_log_n",
    "l_rate",  # smoothed accuracy
    "l_ema_fast",
    "l_ema_mid",
    "l_ema_slow",
    "l_last",  # +1 right, -1 wrong, 0 no history
    "l_streak_correct",
    "l_streak_wrong",
    "l_win_rate",  # accuracy over the last WINDOW answers
    "l_resid",  # recent Elo surprise (answer minus Elo expectation)
    "l_first_rate",  # accuracy on first contact with a skill (prior knowledge)
    "l_log_skills",
    # learner x skill
    "s_theta",
    "s_log_n",
    "s_log_correct",  # PFA successes
    "s_log_wrong",  # PFA failures
    "s_ema_fast",
    "s_ema_slow",
    "s_streak_correct",
    "s_streak_wrong",
    "s_last",
    "s_new",
    "s_log_gap",  # answers on other skills since this skill was last practised
    "s_run",  # position in the current run of consecutive answers on this skill
    "s_win_share",  # share of the last WINDOW answers spent on this skill
    "s_resid",
    # item
    "i_b",  # Elo difficulty
    "i_log_n",
    "i_b_conf",  # difficulty times calibration confidence n/(n+c)
    "i_rate",  # smoothed success rate (logit)
    "i_ctx_rate",  # success rate among learners in the same context (logit)
    "i_ability_rate",  # success rate among learners of similar Elo ability (logit)
    "elo_logit",  # l_theta + s_theta - i_b
    # population: the skill's items summed (how everyone does on this skill)
    "p_rate",  # success rate on the skill (logit)
    "p_ctx_rate",  # ... among learners in the same context (first try / after right / after wrong)
    "p_ability_rate",  # ... among learners of similar Elo ability
    "p_run_rate",  # ... among learners with the same signed streak on the skill (capped at RUN_CAP)
    "p_b",  # answer-weighted mean difficulty of the skill's items
    "i_rel_b",  # this item's difficulty relative to p_b
    "i_rate_p",  # item success rate smoothed towards the skill's, not the global prior (logit)
    "i_ctx_rate_p",
    "i_ability_rate_p",
    "p_log_n",
)
N_FEATURES = len(FEATURE_NAMES)

#: The features ``mastery`` reads, with the direction each moves in when the learner's latest answer
#: is right (+1: never down after a right answer, never up after a wrong one; -1: the reverse),
#: whatever the state before.  Elo abilities move strictly (the Elo residual is never 0); counts,
#: rates, recency-weighted accuracies, last answer and streaks weakly.  Features that move the same
#: way either way (answer counts, the first-try flag, gaps, the context of the next answer) or
#: either way depending on the state (Elo surprise, item and population difficulty) are left out.
#: ``mastery`` is a linear readout whose weights have these signs (checked at load), so it rises
#: after every right answer and falls after every wrong one, by construction.
MASTERY_SIGNS: dict[str, int] = {
    "l_theta": 1, "l_theta_fast": 1, "l_rate": 1, "l_ema_fast": 1, "l_ema_mid": 1, "l_ema_slow": 1,
    "l_last": 1, "l_streak_correct": 1, "l_streak_wrong": -1, "l_win_rate": 1, "l_first_rate": 1,
    "s_theta": 1, "s_log_correct": 1, "s_log_wrong": -1, "s_ema_fast": 1, "s_ema_slow": 1,
    "s_streak_correct": 1, "s_streak_wrong": -1, "s_last": 1,
    "p_rate": 1,  # the learner's own answer is counted into the skill's population too
}

#: The key of a skill state under which the answer path keeps ``typical_logit`` as of the latest
#: answer (the planner reads it: docs/curator.md).  Not a model input: ``features`` never reads it.
TYPICAL_LOGIT = "typical_logit"

#: Hyperparameters of the state updates (Elo step sizes, priors).  They shape the features, so
#: changing one means refitting the weights.
DEFAULT_HYPER: dict[str, float] = {
    "k_learner": 0.6,
    "k_learner_decay": 0.05,
    "k_learner_fast": 0.3,
    "k_skill": 0.3,
    "k_skill_decay": 0.1,
    "k_item": 0.8,
    "k_item_decay": 0.1,
    "item_conf_n": 5.0,
    "prior_rate": 0.66,
    "prior_weight": 2.0,
    "resid_rate_learner": 0.1,
    "resid_rate_skill": 0.3,
    # Cold start by level rank (0=A1, 1=A2, 2=B1, ...).  The public training data has no levels,
    # so these are priors, not fitted values.
    "level_item_step": 0.4,
    "level_skill_step": 0.4,
    # Forgetting: logit penalty per log(1 + days since the skill was last practised).  ASSISTments
    # has no timestamps, so this is a prior, not fitted; it is exactly 0 when now == last attempt.
    "forget_per_log_day": 0.15,
    # Attempt count given to the synthetic "typical item" that mastery() asks about.
    "typical_item_n": 10.0,
}


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _logit(p: float) -> float:
    p = min(max(p, 0.01), 0.99)
    return math.log(p / (1.0 - p))


def _signed_streak(streak: int, correct: int) -> int:
    if correct:
        return streak + 1 if streak > 0 else 1
    return streak - 1 if streak < 0 else -1


_EMPTY_POPULATION: dict[str, Any] = {"n": 0, "nc": 0, "ctx_n": [0, 0, 0], "ctx_nc": [0, 0, 0],
                                     "ab_n": [0] * N_ABILITY, "ab_nc": [0] * N_ABILITY,
                                     "run_n": [0] * N_RUN, "run_nc": [0] * N_RUN, "bn": 0.0}


_ANY_ITEM: dict[str, Any] = {"b": 0.0, "n": 0, "nc": 0, "ctx_n": [0, 0, 0], "ctx_nc": [0, 0, 0],
                             "ab_n": [0] * N_ABILITY, "ab_nc": [0] * N_ABILITY, "run_n": [0] * N_RUN,
                             "run_nc": [0] * N_RUN}


class LearnerModel:
    """Wide-and-deep logistic model over online Elo, PFA, recency and item-calibration features."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        params = params or {}
        self.hyper: dict[str, float] = {**DEFAULT_HYPER, **params.get("hyper", {})}
        self.meta: dict[str, Any] = dict(params.get("meta", {}))
        self.set_weights(params.get("mean"), params.get("scale"), params.get("linear"),
                         params.get("hidden_w"), params.get("hidden_b"), params.get("hidden_out"),
                         params.get("mastery"))

    def set_weights(self, mean: Any = None, scale: Any = None, linear: Any = None,
                    hidden_w: Any = None, hidden_b: Any = None, hidden_out: Any = None,
                    mastery: Any = None) -> None:
        """Install fitted weights.  With none, the model is plain Elo (useful before fitting).

        ``mastery`` weighs the standardised features for ``mastery`` (``MASTERY_SIGNS``; the bias
        is free); without it mastery reads l_theta + s_theta."""
        self.mean = np.zeros(N_FEATURES) if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = np.ones(N_FEATURES) if scale is None else np.asarray(scale, dtype=np.float64)
        if linear is None:
            linear = np.zeros(N_FEATURES)
            linear[FEATURE_NAMES.index("elo_logit")] = 1.0
        self.linear = np.asarray(linear, dtype=np.float64)
        self.hidden_w = np.zeros((N_FEATURES, 0)) if hidden_w is None else np.asarray(hidden_w, float)
        self.hidden_b = np.zeros(self.hidden_w.shape[1]) if hidden_b is None else np.asarray(hidden_b, float)
        self.hidden_out = (np.zeros(self.hidden_w.shape[1]) if hidden_out is None
                           else np.asarray(hidden_out, dtype=np.float64))
        for name, arr, shape in (("mean", self.mean, (N_FEATURES,)), ("scale", self.scale, (N_FEATURES,)),
                                 ("linear", self.linear, (N_FEATURES,)),
                                 ("hidden_b", self.hidden_b, (self.hidden_w.shape[1],)),
                                 ("hidden_out", self.hidden_out, (self.hidden_w.shape[1],))):
            if arr.shape != shape:
                raise ValueError(f"params: {name} has shape {arr.shape}, expected {shape}")
        if self.hidden_w.shape[0] != N_FEATURES:
            raise ValueError(f"params: hidden_w has {self.hidden_w.shape[0]} rows, expected {N_FEATURES}")
        if mastery is None:  # Elo: l_theta + s_theta, whatever the standardisation
            mastery = np.zeros(N_FEATURES)
            for name in ("l_theta", "s_theta"):
                k = FEATURE_NAMES.index(name)
                mastery[k], mastery[0] = self.scale[k], mastery[0] + self.mean[k]
        self.mastery_w = np.asarray(mastery, dtype=np.float64)
        if self.mastery_w.shape != (N_FEATURES,):
            raise ValueError(f"params: mastery has shape {self.mastery_w.shape}, expected {(N_FEATURES,)}")
        signs = np.array([MASTERY_SIGNS.get(name, 0) for name in FEATURE_NAMES], dtype=np.float64)
        signed = self.mastery_w[1:] * signs[1:]
        if np.any(signed < 0) or np.any(self.mastery_w[1:][signs[1:] == 0] != 0) or \
                self.mastery_w[FEATURE_NAMES.index("l_theta")] <= 0:
            raise ValueError("params: mastery weights break MASTERY_SIGNS (mastery would not be monotone "
                             "in the latest answer); refit them")
        self._mastery_idx = np.flatnonzero(self.mastery_w)
        self._new_skill_readout = _NewSkillReadout(self)
        self._new_skill_typical = _NewSkillTypical(self)

    # -- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> LearnerModel:
        """Load fitted params (default: the shipped ``curator/model_params.json``)."""
        data = json.loads(Path(path or DEFAULT_PARAMS_PATH).read_text())
        if list(data.get("feature_names", [])) != list(FEATURE_NAMES):
            raise ValueError("params file was fitted for a different feature set; refit it")
        return cls(data)

    def to_params(self) -> dict[str, Any]:
        return {
            "feature_names": list(FEATURE_NAMES),
            "hyper": self.hyper,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "linear": self.linear.tolist(),
            "hidden_w": self.hidden_w.tolist(),
            "hidden_b": self.hidden_b.tolist(),
            "hidden_out": self.hidden_out.tolist(),
            "mastery": self.mastery_w.tolist(),
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_params(), indent=1) + "\n")

    # -- cold start --------------------------------------------------------------------------
    def new_learner_state(self) -> dict[str, Any]:
        n_ema = len(LEARNER_EMA_RATES)
        return {"n": 0, "nc": 0, "theta": 0.0, "theta_fast": 0.0, "ema": [0.0] * n_ema,
                "ema_w": [0.0] * n_ema, "last": 0, "streak": 0, "recent": [], "resid": 0.0,
                "n_skills": 0, "nc_first": 0}

    def new_skill_state(self, level_rank: int = 0) -> dict[str, Any]:
        n_ema = len(SKILL_EMA_RATES)
        return {"n": 0, "nc": 0, "theta": -self.hyper["level_skill_step"] * level_rank,
                "level": level_rank, "ema": [0.0] * n_ema, "ema_w": [0.0] * n_ema, "streak": 0,
                "last_idx": None, "last_t": None, "run": 0, "recent_idx": [], "resid": 0.0,
                "b_sum": 0.0}

    def new_item_state(self, level_rank: int = 0) -> dict[str, Any]:
        return {"b": self.hyper["level_item_step"] * level_rank, "n": 0, "nc": 0,
                "ctx_n": [0, 0, 0], "ctx_nc": [0, 0, 0], "ab_n": [0] * N_ABILITY, "ab_nc": [0] * N_ABILITY,
                "run_n": [0] * N_RUN, "run_nc": [0] * N_RUN}

    @staticmethod
    def new_population_state() -> dict[str, Any]:
        """The population state of a skill nobody has answered yet (= ``population([])``)."""
        return {"n": 0, "nc": 0, "ctx_n": [0, 0, 0], "ctx_nc": [0, 0, 0], "ab_n": [0] * N_ABILITY,
                "ab_nc": [0] * N_ABILITY, "run_n": [0] * N_RUN, "run_nc": [0] * N_RUN, "bn": 0.0}

    @staticmethod
    def population(items: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
        """The population state of a skill from its items' states: counters summed, and ``bn`` the
        answer-weighted sum of their difficulties.  Item states stored before a key existed count 0."""
        pop = LearnerModel.new_population_state()
        for item in items:
            if item:
                LearnerModel.add_to_population(pop, item)
        return pop

    @staticmethod
    def add_to_population(pop: dict[str, Any], item: dict[str, Any], weight: int = 1) -> None:
        """Add ``weight`` times an item state into a population state (-1 takes it out again: a
        population follows an answer exactly by removing the item's old state, adding its new one)."""
        pop["n"] += weight * item["n"]
        pop["nc"] += weight * item["nc"]
        pop["bn"] += weight * item["n"] * item["b"]
        for key in POPULATION_LIST_KEYS:
            if key in item:
                acc = pop[key]
                for k, v in enumerate(item[key]):
                    acc[k] += weight * v

    # -- features ----------------------------------------------------------------------------
    def features(self, learner: dict[str, Any], skill: dict[str, Any], item: dict[str, Any],
                 now: float, population: dict[str, Any] | None = None) -> list[float]:
        """The feature vector (``FEATURE_NAMES`` order) from the states before an answer.

        ``now`` does not enter the vector: wall-clock forgetting is a separate term (see
        ``logit``), so the fitted part is identical whether time is real or, as in ASSISTments,
        every timestamp is 0.  ``population`` is the skill's population state; None reads as a
        skill nobody has answered yet.
        """
        pop = population or _EMPTY_POPULATION
        h = self.hyper
        prior, pw = h["prior_rate"], h["prior_weight"]
        ln, sn, i_n = learner["n"], skill["n"], item["n"]
        s_ema = [e + (1.0 - w) * prior for e, w in zip(skill["ema"], skill["ema_w"], strict=False)]
        streak = skill["streak"]
        gap = ln - skill["last_idx"] if skill["last_idx"] is not None else 0
        in_window = sum(1 for idx in skill["recent_idx"] if ln - idx <= WINDOW)
        i_rate = (item["nc"] + prior * pw) / (i_n + pw)
        ctx = _context(skill)
        ctx_rate = (item["ctx_nc"][ctx] + i_rate * pw) / (item["ctx_n"][ctx] + pw)
        b = item["b"]
        ab = _ability_bucket(learner)
        ab_rate = (item["ab_nc"][ab] + i_rate * pw) / (item["ab_n"][ab] + pw)
        pn = pop["n"]
        p_rate = (pop["nc"] + prior * pw) / (pn + pw)
        p_ctx = (pop["ctx_nc"][ctx] + p_rate * pw) / (pop["ctx_n"][ctx] + pw)
        p_ab = (pop["ab_nc"][ab] + p_rate * pw) / (pop["ab_n"][ab] + pw)
        run = _run_bucket(streak)
        p_run = (pop["run_nc"][run] + p_ctx * pw) / (pop["run_n"][run] + pw)
        p_b = pop["bn"] / pn if pn else h["level_item_step"] * skill.get("level", 0)
        i_rate_p = (item["nc"] + p_rate * pw) / (i_n + pw)
        return [
            1.0,
            *self.learner_features(learner),
            skill["theta"],
            math.log1p(sn),
            math.log1p(skill["nc"]),
            math.log1p(sn - skill["nc"]),
            s_ema[0],
            s_ema[1],
            float(min(streak, STREAK_CAP)) if streak > 0 else 0.0,
            float(min(-streak, STREAK_CAP)) if streak < 0 else 0.0,
            (1.0 if streak > 0 else -1.0) if streak else 0.0,
            1.0 if sn == 0 else 0.0,
            math.log1p(gap),
            math.log1p(skill["run"]),
            in_window / WINDOW,
            skill["resid"],
            b,
            math.log1p(i_n),
            b * i_n / (i_n + h["item_conf_n"]),
            _logit(i_rate),
            _logit(ctx_rate),
            _logit(ab_rate),
            learner["theta"] + skill["theta"] - b,
            _logit(p_rate),
            _logit(p_ctx),
            _logit(p_ab),
            _logit(p_run),
            p_b,
            b - p_b,
            _logit(i_rate_p),
            _logit((item["ctx_nc"][ctx] + p_ctx * pw) / (item["ctx_n"][ctx] + pw)),
            _logit((item["ab_nc"][ab] + p_ab * pw) / (item["ab_n"][ab] + pw)),
            math.log1p(pn),
        ]

    def learner_features(self, learner: dict[str, Any]) -> list[float]:
        """The learner's features, the "l_" ones (``FEATURE_NAMES[1:15]``): they read the learner state
        alone (``features`` takes them from here)."""
        h = self.hyper
        prior, pw = h["prior_rate"], h["prior_weight"]
        ln = learner["n"]
        l_ema = [e + (1.0 - w) * prior for e, w in zip(learner["ema"], learner["ema_w"], strict=False)]
        recent = learner["recent"]
        lstreak = learner["streak"]
        return [
            learner["theta"],
            learner["theta_fast"],
            math.log1p(ln),
            (learner["nc"] + prior * pw) / (ln + pw),
            l_ema[0],
            l_ema[1],
            l_ema[2],
            float(learner["last"]),
            float(min(lstreak, 10)) if lstreak > 0 else 0.0,
            float(min(-lstreak, 10)) if lstreak < 0 else 0.0,
            (sum(recent) + prior * pw) / (len(recent) + pw),
            learner["resid"],
            (learner["nc_first"] + prior * pw) / (learner["n_skills"] + pw),
            math.log1p(learner["n_skills"]),
        ]

    def forgetting(self, skill: dict[str, Any], now: float) -> float:
        """Logit penalty for wall-clock time since the skill was last practised (0 if none)."""
        last_t = skill["last_t"]
        if last_t is None or now <= last_t:
            return 0.0
        return self.hyper["forget_per_log_day"] * math.log1p((now - last_t) / SECONDS_PER_DAY)

    def logit_from_features(self, X: np.ndarray) -> np.ndarray:
        """The fitted logit for a feature vector or matrix (rows = answers), before forgetting."""
        Z = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        out = Z @ self.linear
        if self.hidden_w.shape[1]:
            out = out + np.maximum(Z @ self.hidden_w + self.hidden_b, 0.0) @ self.hidden_out
        return out

    def predict(self, learner: dict[str, Any], skill: dict[str, Any], item: dict[str, Any],
                now: float, population: dict[str, Any] | None = None) -> float:
        """P(correct) in (0, 1) for this learner answering this item of this skill at ``now``."""
        z = float(self.logit_from_features(np.asarray(self.features(learner, skill, item, now, population))))
        p = _sigmoid(z - self.forgetting(skill, now))
        return min(max(p, P_MIN), 1.0 - P_MIN)

    def typical_item(self, skill: dict[str, Any], population: dict[str, Any] | None = None) -> dict[str, Any]:
        """A calibrated item of the skill's mean difficulty (its level's, for a skill nobody has
        answered) whose success rates in every context and band are the population's."""
        n = self.hyper["typical_item_n"]
        if population and population["n"]:
            pn = population["n"]
            f = n / pn
            item = {"b": population["bn"] / pn, "n": n, "nc": population["nc"] * f}
            for key in ("ctx", "ab", "run"):
                item[key + "_n"] = [v * f for v in population[key + "_n"]]
                item[key + "_nc"] = [v * f for v in population[key + "_nc"]]
            return item
        b = self.hyper["level_item_step"] * skill.get("level", 0)
        nc = n * _sigmoid(_logit(self.hyper["prior_rate"]) - b)
        return {"b": b, "n": n, "nc": nc, "ctx_n": [n] * 3, "ctx_nc": [nc] * 3,
                "ab_n": [n] * N_ABILITY, "ab_nc": [nc] * N_ABILITY, "run_n": [n] * N_RUN, "run_nc": [nc] * N_RUN}

    def mastery(self, learner: dict[str, Any], skill: dict[str, Any], now: float,
                population: dict[str, Any] | None = None) -> float:
        """0..1: how likely the learner is to get a typical item of this skill right now.

        A linear readout of the learner's and skill's features, fitted to the model's own logits
        (``model_eval.fit``) with the signs of ``MASTERY_SIGNS``, minus forgetting: it tracks the
        model's prediction but, unlike a raw next-answer prediction (which reacts to the context of
        the next answer, e.g. first try vs after a wrong one), it always rises after a right answer
        and falls after a wrong one.
        """
        # the readout reads no item feature: any item state will do (a constant one costs nothing)
        x = self.features(learner, skill, _ANY_ITEM, now, population)
        idx = self._mastery_idx
        z = float(((np.asarray(x)[idx] - self.mean[idx]) / self.scale[idx]) @ self.mastery_w[idx])
        p = _sigmoid(z - self.forgetting(skill, now))
        return min(max(p, P_MIN), 1.0 - P_MIN)

    def typical_logit(self, learner: dict[str, Any], skill: dict[str, Any], now: float,
                      population: dict[str, Any] | None = None) -> float:
        """The fitted logit of ``predict`` on the skill's typical item (``typical_item``), before
        forgetting: ``predict(learner, skill, typical_item(skill, population), now, population)`` is
        its sigmoid minus ``forgetting(skill, now)``."""
        x = self.features(learner, skill, self.typical_item(skill, population), now, population)
        return float(self.logit_from_features(np.asarray(x)))

    def mastery_and_typical(self, learner: dict[str, Any], skill: dict[str, Any], now: float,
                            population: dict[str, Any] | None = None) -> tuple[float, float]:
        """(``mastery``, ``typical_logit``), bit for bit, from one feature vector (the answer path stores
        both): the mastery readout reads no item feature, so the typical item's vector serves it too."""
        x = np.asarray(self.features(learner, skill, self.typical_item(skill, population), now, population))
        idx = self._mastery_idx
        z = float(((x[idx] - self.mean[idx]) / self.scale[idx]) @ self.mastery_w[idx])
        p = min(max(_sigmoid(z - self.forgetting(skill, now)), P_MIN), 1.0 - P_MIN)
        return p, float(self.logit_from_features(x))

    def learner_typical_half(self, learner: dict[str, Any]) -> tuple[int, np.ndarray]:
        """The learner's half of ``new_skill_typical_logit`` (its ability bucket; its share of the hidden layer's
        inputs, then of the linear term): computed once, it serves every new skill."""
        return _ability_bucket(learner), np.asarray(self.learner_features(learner)) @ self._new_skill_typical.weights

    def skill_typical_half(self, level_rank: int, population: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """The other half: a never-practised skill of this level whose population is `population`,
        for a learner in each ability bucket (hidden-layer inputs, linear terms)."""
        r = self._new_skill_typical
        skill = self.new_skill_state(level_rank)
        item = self.typical_item(skill, population)
        rows = []
        for ref in r.bucket_learners:
            x = np.asarray(self.features(ref, skill, item, 0.0, population))
            x[r.elo] -= x[r.theta]  # elo_logit = l_theta + (s_theta - b): the learner's share comes from the other half
            x[r.learner_features] = 0.0
            rows.append(x)
        Z = (np.asarray(rows) - self.mean) / self.scale
        return Z @ self.hidden_w + self.hidden_b, Z @ self.linear

    def new_skill_typical_logit(self, learner_half: tuple[int, np.ndarray],
                                skill_half: tuple[np.ndarray, np.ndarray]) -> float:
        """``typical_logit(learner, new_skill_state(level_rank), now, population)`` (to rounding, ~1e-15)
        from `learner_typical_half(learner)` and `skill_typical_half(level_rank, population)`: a
        never-practised skill's features read the learner only through the learner features, elo_logit
        (linearly) and the ability bucket (and it has nothing to forget)."""
        ab, half = learner_half
        hidden, linear = skill_half
        z = float(linear[ab]) + float(half[-1])
        if self.hidden_w.shape[1]:
            z += float(np.maximum(hidden[ab] + half[:-1], 0.0) @ self.hidden_out)
        return z

    def learner_readout(self, learner: dict[str, Any]) -> list[float]:
        """The learner's half of ``new_skill_mastery``'s input: computed once, it serves every skill."""
        x = self.features(learner, self.new_skill_state(), _ANY_ITEM, 0.0)
        return [x[k] for k in self._new_skill_readout.learner_features]

    def skill_readout(self, level_rank: int, population: dict[str, Any] | None) -> np.ndarray:
        """The other half: a never-practised skill of this level whose population is `population`."""
        x = self.features(self.new_learner_state(), self.new_skill_state(level_rank), _ANY_ITEM, 0.0, population)
        return np.asarray(x)[self._mastery_idx]

    def new_skill_mastery(self, learner_half: list[float], skill_half: np.ndarray) -> float:
        """``mastery(learner, new_skill_state(level_rank), now, population)``, bit for bit, from
        `learner_readout(learner)` and `skill_readout(level_rank, population)`: the readout's learner
        features ("l_") read the learner alone, its others the skill and population alone, and a
        never-practised skill has nothing to forget."""
        r = self._new_skill_readout
        x = skill_half.copy()
        x[r.learner_slots] = learner_half
        p = _sigmoid(float(((x - r.mean) / r.scale) @ r.weights))
        return min(max(p, P_MIN), 1.0 - P_MIN)

    # -- update ------------------------------------------------------------------------------
    def update(self, learner: dict[str, Any], skill: dict[str, Any], item: dict[str, Any],
               correct: bool, now: float, population: dict[str, Any] | None = None) -> ItemStep:
        """Record one answer: mutates the states in place, O(1).  ``population`` (the skill's, if
        given) gets the same counts as the item, so it stays equal to ``population(items)``.
        Returns the answer's step of the item (``apply_item_step`` replays it on any item state)."""
        h = self.hyper
        c = 1 if correct else 0
        theta = learner["theta"] + skill["theta"]
        resid = c - _sigmoid(theta - item["b"])
        learner["theta"] += h["k_learner"] / (1.0 + h["k_learner_decay"] * learner["n"]) * resid
        skill["theta"] += h["k_skill"] / (1.0 + h["k_skill_decay"] * skill["n"]) * resid
        step = ItemStep(c, theta, _ability_bucket(learner), _context(skill), _run_bucket(skill["streak"]))
        b_old, i_n = item["b"], item["n"]
        self.apply_item_step(item, step)
        learner["theta_fast"] += h["k_learner_fast"] * (c - _sigmoid(learner["theta_fast"] - item["b"]))
        learner["resid"] += h["resid_rate_learner"] * (resid - learner["resid"])
        skill["resid"] += h["resid_rate_skill"] * (resid - skill["resid"])
        if population is not None:
            _count(population, step.ability, step.context, step.run, c)
            population["bn"] += (i_n + 1) * item["b"] - i_n * b_old

        if skill["n"] == 0:
            learner["n_skills"] += 1
            learner["nc_first"] += c
        idx = learner["n"]
        last_idx = skill["last_idx"]
        skill["run"] = skill["run"] + 1 if last_idx is not None and idx - last_idx == 1 else 1
        skill["last_idx"] = idx
        skill["last_t"] = float(now)
        skill["recent_idx"] = [i for i in skill["recent_idx"] if idx + 1 - i <= WINDOW] + [idx]
        skill["streak"] = _signed_streak(skill["streak"], c)
        skill["b_sum"] += item["b"]
        skill["n"] += 1
        skill["nc"] += c
        _ema_update(skill, SKILL_EMA_RATES, c)

        learner["streak"] = _signed_streak(learner["streak"], c)
        learner["last"] = 1 if c else -1
        learner["recent"] = [*learner["recent"][-(WINDOW - 1):], c]
        learner["n"] += 1
        learner["nc"] += c
        _ema_update(learner, LEARNER_EMA_RATES, c)
        return step

    def apply_item_step(self, item: dict[str, Any], step: ItemStep) -> None:
        """One answer's step of an item state, in place: the Elo difficulty moves by the residual of
        ``step.theta`` against the item's difficulty *now* (step shrinking with its answer count), and
        the counters of the answer's contexts count it.  ``update`` applies it to the item it is given;
        when a concurrent answer moved the question first, the answer path applies it again to the
        question's latest stored state (serving/progress.py), so every answer calibrates the item."""
        h = self.hyper
        resid = step.correct - _sigmoid(step.theta - item["b"])
        item["b"] -= h["k_item"] / (1.0 + h["k_item_decay"] * item["n"]) * resid
        if "run_n" not in item:  # stored before the key existed
            item["run_n"], item["run_nc"] = [0] * N_RUN, [0] * N_RUN
        _count(item, step.ability, step.context, step.run, step.correct)


class ItemStep(NamedTuple):
    """What one answer does to its item, apart from the item itself: taken from the learner's and
    skill's states as the answer found them (``update`` returns it)."""

    correct: int
    """1 right, 0 wrong."""
    theta: float
    """The learner's Elo ability plus their Elo offset on the skill, before the answer."""
    ability: int
    """The learner's ability bucket (``ab_n``/``ab_nc`` index), from their ability after the answer."""
    context: int
    """0 first try of the skill, 1 after a right answer on it, 2 after a wrong one (``ctx_*`` index)."""
    run: int
    """The signed streak on the skill before the answer, as a ``run_*`` index."""


class _NewSkillReadout:
    """``mastery``'s readout terms, indexed once for ``new_skill_mastery`` (mastery indexes them per call)."""

    def __init__(self, model: LearnerModel) -> None:
        idx = model._mastery_idx
        self.mean, self.scale, self.weights = model.mean[idx], model.scale[idx], model.mastery_w[idx]
        self.learner_features = [int(k) for k in idx if FEATURE_NAMES[k].startswith("l_")]
        self.learner_slots = [j for j, k in enumerate(idx) if FEATURE_NAMES[k].startswith("l_")]


class _NewSkillTypical:
    """``new_skill_typical_logit``'s split of the fitted logit: the standardised learner features (and the
    learner's share of elo_logit) through the linear and hidden weights, and one reference learner per
    ability bucket for the rest."""

    def __init__(self, model: LearnerModel) -> None:
        self.learner_features = [k for k, name in enumerate(FEATURE_NAMES) if name.startswith("l_")]
        assert self.learner_features == list(range(1, 15)), "learner_features: FEATURE_NAMES[1:15]"
        self.theta, self.elo = FEATURE_NAMES.index("l_theta"), FEATURE_NAMES.index("elo_logit")
        # x_l / scale at the learner features, plus l_theta / scale at elo_logit
        W = np.zeros((len(self.learner_features), N_FEATURES))
        for j, k in enumerate(self.learner_features):
            W[j, k] = 1.0 / model.scale[k]
        W[self.learner_features.index(self.theta), self.elo] = 1.0 / model.scale[self.elo]
        self.weights = np.hstack([W @ model.hidden_w, (W @ model.linear)[:, None]])
        """The learner features' weights into the hidden layer's inputs, then into the linear term."""
        self.bucket_learners = [model.new_learner_state()]  # bucket 0: fewer than 5 answers
        for theta in (ABILITY_EDGES[0] - 1.0, *ABILITY_EDGES):  # then one inside each l_theta interval
            self.bucket_learners.append({**model.new_learner_state(), "n": 5, "theta": theta})
        assert [_ability_bucket(r) for r in self.bucket_learners] == list(range(N_ABILITY))


def _ability_bucket(learner: dict[str, Any]) -> int:
    """0: fewer than 5 answers so far, then one bucket per ``ABILITY_EDGES`` interval of l_theta."""
    if learner["n"] < 5:
        return 0
    theta = learner["theta"]
    return 1 + sum(1 for edge in ABILITY_EDGES if theta >= edge)


def _run_bucket(streak: int) -> int:
    """The signed streak on the skill, capped at +-RUN_CAP, as an index 0..N_RUN-1."""
    return max(-RUN_CAP, min(RUN_CAP, streak)) + RUN_CAP


def _count(state: dict[str, Any], ab: int, ctx: int, run: int, c: int) -> None:
    """One answer into an item's (or a population's) counters."""
    state["n"] += 1
    state["nc"] += c
    state["ab_n"][ab] += 1
    state["ab_nc"][ab] += c
    state["ctx_n"][ctx] += 1
    state["ctx_nc"][ctx] += c
    state["run_n"][run] += 1
    state["run_nc"][run] += c


def _context(skill: dict[str, Any]) -> int:
    """0: first try of the skill, 1: last answer on it right, 2: last answer on it wrong."""
    if skill["n"] == 0:
        return 0
    return 1 if skill["streak"] > 0 else 2


def _ema_update(state: dict[str, Any], rates: tuple[float, ...], c: int) -> None:
    # the stored average starts at 0 with weight 0; the feature adds the prior for the missing weight
    ema, ema_w = state["ema"], state["ema_w"]
    for k, r in enumerate(rates):
        ema[k] = (1.0 - r) * ema[k] + r * c
        ema_w[k] = (1.0 - r) * ema_w[k] + r
