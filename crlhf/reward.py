"""The reward: labels + program + task -> the score ``s`` PPO trains on. The one owner of it
(DESIGN.md, "one quantity, one function"): the loop, :mod:`crlhf.trl_rewards`, the store's
dataset and exports, :func:`crlhf.crowd_views.scores_at`, the dashboard and the ThresholdExplorer all
call this module, and none recomputes it.

**Scored lines.** A program ``y = task.program(completion)`` has lines ``l_1..l_n``; the crowd
labels all of them (the prompt's lines are shown as context), but a reward scores only the
*counted* lines (non-blank, non-comment, :func:`crlhf.crowd.counted_lines`) that the model
*generated*, i.e. not the ``g`` lines that came with the prompt (:func:`given_lines`)::

    S = { j : counted(l_j) and j >= g },     k = |S|

Counting the prompt's lines would pay an empty completion ``s = 1``; with ``k = 0`` every shape
pays 0.

**Per-line probabilities.** A reward source (:data:`SOURCES`) turns what is known of a program
into ``q_j = P(line j correct)`` per line: the Bayesian posterior of eq (7) (``bayes``), an
aggregator's posterior (``majority``: the vote share; ``single``: one annotator's label as 0/1;
``dawid_skene``: the EM posterior, Dawid & Skene 1979), the line truth as 0/1 (``oracle``); an
unlabelled line has ``q_j = 0``. ``tests`` has no lines: it pays ``1[program passes its unit
tests]`` under every shape.

**Shapes** (:data:`SHAPES`), with ``c = |{j in S : q_j > tau}|``:

* ``share``: ``s = c / k``, the paper's correction rate (cRLHF, Wong & Tan 2024).
* ``all_correct``: ``s = 1[c = k]`` (and ``k > 0``): the program-level verdict that unit tests
  give (pass/fail, as in CodeRL, Le et al. 2022), here from the crowd.
* ``product``: ``s = prod_{j in S} q_j``, which under eq (7)'s independent lines is
  ``P(every scored line correct | labels)``, the posterior probability that the program is
  right; no threshold. Exposed as :attr:`crlhf.crowd.ProgramResult.product` too.

**Credit** (:data:`CREDITS`), how the score reaches the response tokens (:func:`credit`):

* ``sequence``: ``s`` at the last response token (Ziegler et al. 2019).
* ``line_end``: dense rewards in the manner of Fine-Grained RLHF (Wu et al. 2023): line ``j``
  in ``S`` pays ``1[q_j > tau] / k`` at its last token, and the last token gets
  ``s - c / k``, so that with ``gamma = 1`` the return from the first token is still ``s``
  (for ``share`` the last-token term is 0: the score is entirely dense).
* ``blame``: ``s`` at the last token, and advantage weights ``w_t = 1`` on the tokens of lines
  judged wrong (``j in S``, ``q_j <= tau``), ``0`` elsewhere, which PPO applies to negative
  advantages only (:mod:`crlhf.ppo`): a failing program is penalised on the lines that made it
  fail (RLTF, Liu et al. 2023; StepCoder, Dou et al. 2024). A program with no line judged wrong
  keeps ``w = 1`` everywhere.

**Tokens to lines** (:func:`token_lines`): response token ``t`` covers the characters the
incremental decoding of the response adds at ``t``; it belongs to the line of its *last*
character, a newline belonging to the line it ends (so ``")\\n"`` is on the line it closes and
``"\\n    "`` on the line it indents). A token that completes no character (the first bytes of
a multi-byte character) belongs to the line of the next token that does; tokens after the last
character (EOS) belong to none (``-1``). Response line ``i`` is program line ``g + i``.

**Baseline** (:func:`prompt_centred`): each score minus the mean score of the other programs
of the same prompt (the leave-one-out baseline of Kool et al. 2019 / RLOO).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .crowd import counted_lines

if TYPE_CHECKING:
    from .tasks import Task

__all__ = ["SHAPES", "CREDITS", "given_lines", "scored_lines", "scored_mask", "shape_scores", "score", "line_share",
           "program_scores", "shape_table", "prompt_centred", "CheckedProgram", "RewardInputs", "SOURCES", "Rewards",
           "rewards", "token_lines", "credit"]

SHAPES = ("share", "all_correct", "product")
CREDITS = ("sequence", "line_end", "blame")
LINE_FRAME_COLUMNS = ("program_id", "line", "posterior", "counted")


def _check_choice(value, choices, field: str) -> str:
    if value not in choices:
        raise ValueError(f"{field} must be one of {choices}, got {value!r}")
    return value


def _check_tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) or not 0.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau must be a number in [0, 1], got {tau!r}")
    return float(tau)


# ----------------------------------------------------------------------------- scored lines
def given_lines(program: str, prompt: str | None, prompt_in_program: bool = True) -> int:
    """``g``: how many leading lines of ``program`` came with ``prompt`` (its full lines when the
    program starts with it, else 0). Same rule as :meth:`crlhf.tasks.Task.given_lines`."""
    if prompt_in_program and prompt and program.startswith(prompt):
        return prompt.count("\n")
    return 0


def scored_lines(program: str, task=None, count_blank: bool = False, *, prompt: str | None = None) -> np.ndarray:
    """The lines of ``program`` a reward scores: counted lines (:func:`crlhf.crowd.counted_lines`)
    after the ``g`` lines given with the prompt. ``task``: a :class:`crlhf.tasks.Task` (its
    ``given_lines``), or pass the ``prompt`` text instead; neither: every counted line."""
    mask = counted_lines(program, count_blank)
    if task is not None:
        g = task.given_lines(program)
    else:
        g = given_lines(program, prompt)
    mask[:g] = False
    return mask


def scored_mask(lines: pd.DataFrame, prompts: Mapping | None = None, programs: Mapping | None = None
                ) -> np.ndarray:
    """The scored lines of a per-line frame (``ReplayResult.lines``: ``program_id, line,
    counted``): ``counted`` and ``line >= g``, with ``g`` from ``prompts`` (``program_id ->
    prompt``) and ``programs`` (``program_id -> text``). Without a prompt or text for a program
    ``g = 0``. A ``scored`` column, when the frame has one, is returned as it is."""
    if "scored" in lines.columns:
        return lines["scored"].to_numpy(dtype=bool)
    counted = lines["counted"].to_numpy(dtype=bool)
    if not prompts or not programs:
        return counted
    codes, pids = pd.factorize(lines["program_id"], sort=False)
    g = np.array([given_lines(programs[p], prompts.get(p)) if p in programs else 0 for p in pids], dtype=np.int64)
    return counted & (lines["line"].to_numpy(np.int64) >= g[codes])


# ----------------------------------------------------------------------------- shapes
def shape_scores(prob, scored, codes, n_programs: int, shape: str = "share", tau: float = 0.5) -> np.ndarray:
    """The score of ``n_programs`` programs from flat per-line arrays: ``prob`` (``q_j``),
    ``scored`` (bool) and ``codes`` (the program index of each line). Vectorised (bincount);
    finite for any ``q`` in [0, 1]; ``k = 0`` scores 0. See the module docstring for the shapes."""
    _check_choice(shape, SHAPES, "shape")
    tau = _check_tau(tau)
    prob = np.clip(np.nan_to_num(np.asarray(prob, dtype=np.float64), nan=0.0), 0.0, 1.0)
    scored = np.asarray(scored, dtype=bool)
    codes = np.asarray(codes, dtype=np.int64)
    k = np.bincount(codes, weights=scored, minlength=n_programs).astype(np.float64)
    if shape == "product":
        logq = np.log(np.maximum(prob, 1e-300))  # q = 0 gives exp(-690 * ...) = 0.0, never -inf
        s = np.exp(np.bincount(codes, weights=np.where(scored, logq, 0.0), minlength=n_programs).astype(np.float64))
        zero = np.bincount(codes, weights=scored & (prob <= 0.0), minlength=n_programs) > 0
        return np.where((k > 0) & ~zero, s, 0.0)
    c = np.bincount(codes, weights=scored & (prob > tau), minlength=n_programs).astype(np.float64)
    if shape == "share":
        return np.divide(c, k, out=np.zeros_like(c), where=k > 0)
    return ((k > 0) & (c == k)).astype(np.float64)


def score(prob, scored, shape: str = "share", tau: float = 0.5) -> float:
    """The score of one program: per-line ``prob`` (``q_j``) and the ``scored`` mask."""
    prob = np.asarray(prob, dtype=np.float64).reshape(-1)
    scored = np.asarray(scored, dtype=bool).reshape(-1)
    if len(prob) != len(scored):
        raise ValueError(f"prob has {len(prob)} lines, scored {len(scored)} (field 'scored')")
    return float(shape_scores(prob, scored, np.zeros(len(prob), np.int64), 1, shape, tau)[0])


def line_share(correct, scored: np.ndarray) -> float:
    """``s = c/k``: the share of the scored lines judged correct (0.0 when none is scored)."""
    return score(np.asarray(correct, dtype=np.float64), scored, "share", 0.5)


def program_scores(lines: pd.DataFrame, tau: float = 0.5, shape: str = "share", *, prompts: Mapping | None = None,
                   programs: Mapping | None = None) -> pd.DataFrame:
    """Every program's score from a per-line frame (``ReplayResult.lines`` or
    :meth:`crlhf.crowd.CrowdModel.assess_log`; columns ``program_id, line, posterior, counted``
    [+ ``scored``]) at threshold ``tau`` and ``shape``, over the scored lines
    (:func:`scored_mask`). Returns ``program_id, score, k`` in order of first appearance."""
    _check_lines(lines)
    mask = scored_mask(lines, prompts, programs)
    codes, pids = pd.factorize(lines["program_id"], sort=False)
    s = shape_scores(lines["posterior"].to_numpy(dtype=float), mask, codes, len(pids), shape, tau)
    k = np.bincount(codes, weights=mask, minlength=len(pids)).astype(np.int64)
    pid_obj = np.empty(len(pids), dtype=object)
    pid_obj[:] = list(pids)
    return pd.DataFrame({"program_id": pid_obj, "score": s, "k": k})


def shape_table(lines: pd.DataFrame, tau: float = 0.5, *, prompts: Mapping | None = None,
                programs: Mapping | None = None) -> pd.DataFrame:
    """What each shape would pay each program: ``program_id, k`` and one column per shape."""
    out = program_scores(lines, tau, SHAPES[0], prompts=prompts, programs=programs).rename(
        columns={"score": SHAPES[0]})
    for shape in SHAPES[1:]:
        out[shape] = program_scores(lines, tau, shape, prompts=prompts, programs=programs)["score"].to_numpy()
    return out[["program_id", "k", *SHAPES]]


def _check_lines(lines) -> None:
    if not isinstance(lines, pd.DataFrame):
        raise TypeError("lines must be the frame of ReplayResult.lines (program_id, line, posterior, counted)")
    missing = [c for c in LINE_FRAME_COLUMNS if c not in lines.columns]
    if missing:
        raise ValueError(f"lines lack column(s) {missing}; expected {LINE_FRAME_COLUMNS} (ReplayResult.lines)")


def prompt_centred(scores: Sequence[float], groups: Sequence) -> list[float]:
    """Each score minus the mean score of the other members of its group (the leave-one-out
    baseline, Kool et al. 2019); a group of one keeps its score."""
    x = np.asarray(scores, dtype=np.float64)
    codes, _ = pd.factorize(pd.Series(list(groups), dtype=object))
    total = np.bincount(codes, weights=x)
    count = np.bincount(codes).astype(np.float64)
    others = count[codes] - 1
    mean_others = np.divide(total[codes] - x, others, out=np.zeros_like(x), where=others > 0)
    return (x - np.where(others > 0, mean_others, 0.0)).tolist()


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class CheckedProgram:
    """A sampled program after the sandbox: the text the crowd sees (``task.program`` of the
    completion), the verdict, the line truth (:func:`crlhf.tasks.line_truth`), and the lines a
    reward scores (``scored``, :func:`scored_lines`)."""

    task: Task
    program: str
    passed: bool
    truth: list
    scored: np.ndarray

    @property
    def given(self) -> int:
        """``g``: the lines that came with the prompt."""
        return int(self.task.given_lines(self.program))

    @property
    def s_true(self) -> float:
        """The true ``s = c/k``: the share of the scored lines that the line truth calls correct."""
        return line_share(np.asarray(self.truth) == 1, self.scored)


@dataclass
class RewardInputs:
    """What a reward source may read for one batch of programs.

    checked : ``program_id -> CheckedProgram``.
    labels : the latest label per ``(program_id, line, annotator)`` of these programs.
    posteriors : ``program_id -> eq (7) posteriors per line`` (the CrowdModel's, at ingestion).
    log : every label so far (``program_id, line, annotator, label``), for ``dawid_skene``.
    gold : a frame ``program_id, line, label`` of known truths (gold programs), or None.
    seed : seeds ``single``'s draw of one annotator per line.
    """

    checked: Mapping
    labels: pd.DataFrame | None = None
    posteriors: Mapping | None = None
    log: pd.DataFrame | None = None
    gold: pd.DataFrame | None = None
    seed: int = 0


def _per_line(agg: pd.DataFrame, checked: Mapping) -> dict:
    """An aggregator's ``posterior`` column as one array per program (0 where unlabelled)."""
    out = {p: np.zeros(len(c.scored)) for p, c in checked.items()}
    if agg is None or not len(agg):
        return out
    for p, g in agg.groupby("program_id", sort=False):
        if p in out:
            line = g["line"].to_numpy(np.int64)
            ok = (line >= 0) & (line < len(out[p]))
            out[p][line[ok]] = g["posterior"].to_numpy(dtype=float)[ok]
    return out


def _frame(labels) -> pd.DataFrame:
    if labels is None:
        raise ValueError("RewardInputs.labels is needed by this reward source")
    return labels.loc[:, ["program_id", "line", "annotator", "label"]]


def _bayes(inputs: RewardInputs) -> dict:
    if inputs.posteriors is None:
        raise ValueError("RewardInputs.posteriors is needed by the 'bayes' reward source")
    return {p: np.asarray(inputs.posteriors[p], dtype=float) for p in inputs.checked}


def _majority(inputs: RewardInputs) -> dict:
    from .aggregators import majority_vote

    return _per_line(majority_vote(_frame(inputs.labels)), inputs.checked)


def _single(inputs: RewardInputs) -> dict:
    from .aggregators import single_annotator

    return _per_line(single_annotator(_frame(inputs.labels), seed=inputs.seed), inputs.checked)


def _dawid_skene(inputs: RewardInputs) -> dict:
    from .aggregators import dawid_skene

    log = inputs.log if inputs.log is not None else inputs.labels
    return _per_line(dawid_skene(_frame(log), gold=inputs.gold), inputs.checked)


def _oracle(inputs: RewardInputs) -> dict:
    return {p: (np.asarray(c.truth) == 1).astype(np.float64) for p, c in inputs.checked.items()}


def _tests(inputs: RewardInputs) -> dict:
    return {p: 1.0 if c.passed else 0.0 for p, c in inputs.checked.items()}


SOURCES: dict[str, Callable[[RewardInputs], dict]] = {
    "bayes": _bayes, "majority": _majority, "single": _single, "dawid_skene": _dawid_skene,
    "oracle": _oracle, "tests": _tests,
}
"""The reward sources, one registry: ``name -> fn(RewardInputs) -> {program_id: q}``, ``q`` the
per-line ``P(line correct)`` array, or a float for a program-level verdict (``tests``)."""


@dataclass(frozen=True)
class Rewards:
    """A batch's rewards: ``scores`` (``program_id -> s``) and the per-line ``q`` they came from
    (``None`` for a program-level source)."""

    scores: dict
    lines: dict | None
    shape: str
    tau: float


def rewards(source: str, inputs: RewardInputs, shape: str = "share", tau: float = 0.5) -> Rewards:
    """Score every program of ``inputs.checked`` with a reward ``source`` (:data:`SOURCES`) and
    ``shape`` (:data:`SHAPES`) over its scored lines, one vectorised pass."""
    _check_choice(source, tuple(SOURCES), "reward source")
    _check_choice(shape, SHAPES, "shape")
    tau = _check_tau(tau)
    q = SOURCES[source](inputs)
    pids = list(inputs.checked)
    if any(not isinstance(v, np.ndarray) for v in q.values()):  # program-level verdicts
        return Rewards({p: float(q[p]) for p in pids}, None, shape, tau)
    lengths = np.array([len(inputs.checked[p].scored) for p in pids], dtype=np.int64)
    for p, n in zip(pids, lengths, strict=True):
        if len(q[p]) != n:
            raise ValueError(f"program {p!r}: {len(q[p])} line probabilities for {n} lines")
    flat = np.concatenate([q[p] for p in pids]) if pids else np.zeros(0)
    mask = np.concatenate([inputs.checked[p].scored for p in pids]) if pids else np.zeros(0, bool)
    codes = np.repeat(np.arange(len(pids)), lengths)
    s = shape_scores(flat, mask, codes, len(pids), shape, tau)
    return Rewards(dict(zip(pids, s.tolist(), strict=True)), q, shape, tau)


# ----------------------------------------------------------------------------- tokens and credit
def token_lines(tokenizer, token_ids, first_line: int = 0) -> np.ndarray:
    """The program line of each response token (see the module docstring): incremental
    decoding of ``token_ids``, each token on the line of its last character (a newline on the
    line it ends), a token completing no character on the line of the next one that does,
    ``-1`` after the last character. ``first_line``: the program line of the response's first
    character (``g``, :func:`given_lines`)."""
    ids = [int(i) for i in (token_ids.tolist() if hasattr(token_ids, "tolist") else token_ids)]
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    texts = tokenizer.batch_decode([ids[:j + 1] for j in range(n)], skip_special_tokens=True,
                                   clean_up_tokenization_spaces=False)
    # characters complete after token j: an incomplete multi-byte tail decodes to U+FFFD
    ends = np.array([len(t.rstrip("\ufffd")) if j < n - 1 else len(t) for j, t in enumerate(texts)], dtype=np.int64)
    ends = np.maximum.accumulate(ends)
    full = texts[-1]
    newlines = np.cumsum([0] + [ch == "\n" for ch in full])  # newlines[c] = newlines before char c
    starts = np.concatenate([[0], ends[:-1]])
    has = ends > starts
    line = np.full(n, -1, dtype=np.int64)
    last_char = np.maximum(ends - 1, 0)
    line[has] = newlines[last_char[has]]  # a newline at c counts the newlines before it: its own line
    # tokens with no character take the line of the next token that has one (a backward fill)
    idx = np.where(has, np.arange(n), n)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]
    line = np.where(has, line, np.where(nxt < n, line[np.minimum(nxt, n - 1)], -1))
    return np.where(line >= 0, line + int(first_line), -1)


def credit(credit: str, rewards_: Rewards, checked: Mapping,
           tok_lines: Mapping | None = None) -> tuple[dict, dict, dict]:
    """How each program's score reaches its tokens (``credit`` one of :data:`CREDITS`).

    ``tok_lines``: ``program_id -> token_lines(...)`` (needed by ``line_end`` and ``blame``).
    Returns ``(terminal, token_rewards, advantage_weights)``: the score at the last token, and
    per-token arrays (``{}`` when the credit has none). ``sum(token_rewards) + terminal = s``.
    """
    _check_choice(credit, CREDITS, "credit")
    s = rewards_.scores
    if credit == "sequence" or rewards_.lines is None:
        return dict(s), {}, {}
    if tok_lines is None:
        raise ValueError(f"credit={credit!r} needs the token lines of every program (tok_lines)")
    tau = rewards_.tau
    terminal, dense, weights = {}, {}, {}
    for p, c in checked.items():
        q = rewards_.lines[p]
        lines = np.asarray(tok_lines[p], dtype=np.int64)
        scored = np.asarray(c.scored, dtype=bool)
        valid = (lines >= 0) & (lines < len(scored))
        on = np.zeros(len(lines), dtype=bool)
        on[valid] = scored[lines[valid]]
        good = np.zeros(len(lines), dtype=bool)
        good[valid] = q[lines[valid]] > tau
        if credit == "line_end":
            k = int(scored.sum())
            # the last token of each line: where the next token is on another line
            last = on & np.append(lines[1:] != lines[:-1], True)
            r = np.where(last & good, 1.0 / k if k else 0.0, 0.0)
            dense[p] = r
            terminal[p] = float(s[p] - r.sum())
        else:  # blame
            wrong = on & ~good
            weights[p] = wrong.astype(np.float64) if wrong.any() else np.ones(len(lines))
            terminal[p] = float(s[p])
    return terminal, dense, weights
