"""The online crowd model of Algorithm 1 (lines 3-6 and 10-23): gold calibration, label
ingestion one program at a time, posteriors (eq 7), scores ``s = c/k`` and reliability
updates (eq 8, or a Beta-Bernoulli estimate), with the full reliability history.

Update semantics (DESIGN.md): for one program, every posterior is computed with the
reliabilities as they stood; then each annotator's increments over all the lines it labelled
are summed in logit space. The order of labels inside a program does not matter.

On a line with posterior log-odds ``S`` the reference answer is ``sign(S)`` with
``pbar = max(P, 1-P)``, so eq (8) steps by ``mu * logit(pbar) = clip(label * S, ±logit(p_max))``;
with ``leave_one_out`` annotator ``i`` is judged against ``S - label_i * logit(p_i)``, the
consensus of the others. On gold lines ``mu * logit(pbar) = label * truth * logit(gold_certainty)``.

``reliability="two_coin"`` (Dawid & Skene 1979; Raykar et al. 2010) gives each annotator a
sensitivity ``a_i = P(+1 | line correct)`` and a specificity ``b_i = P(-1 | line wrong)``, and
learns the line prior ``pi = P(line correct)`` too; the posterior generalises eq (7) to
``logit(pi) + sum_i [+1] log(a_i / (1 - b_i)) + [-1] log((1 - a_i) / b_i)``
(:func:`crlhf.bayes.two_coin_log_odds`).

A label log is replayed into a model by one function, :func:`crlhf.replay.replay_log` (the
store's replay, the loop's resume), or by its incremental form
:class:`crlhf.replay.IncrementalReplay` (the dashboard); the read-only views the widgets show
(scores at a threshold, threshold curves, the leaderboard) are in :mod:`crlhf.crowd_views`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._deprecation import moved_names
from .bayes import expit, logit

__all__ = ["RELIABILITY_METHODS", "program_lines", "counted_lines", "latest_labels", "ProgramResult", "ReplayResult",
           "CrowdModel"]

RELIABILITY_METHODS = ("eq8", "beta", "two_coin")
LOG_COLUMNS = ("program_id", "line", "annotator", "label")


def program_lines(program: str) -> list[str]:
    """The lines of a program as the crowd sees and numbers them (0-based)."""
    if not isinstance(program, str):
        raise TypeError(f"program must be a str, got {type(program).__name__}")
    return program.splitlines()


def counted_lines(program: str, count_blank: bool = False) -> np.ndarray:
    """Which lines count in ``k`` of ``s = c/k``: non-blank, non-comment lines unless ``count_blank``."""
    lines = program_lines(program)
    if count_blank:
        return np.ones(len(lines), dtype=bool)
    stripped = [line.strip() for line in lines]
    return np.array([bool(s) and not s.startswith("#") for s in stripped], dtype=bool)


@dataclass(frozen=True)
class ProgramResult:
    """What the crowd says of one program."""

    program_id: Hashable
    posteriors: np.ndarray  # P(line correct), eq (7), one per line
    consensus: np.ndarray  # +1 / -1 per line; 0 where the posterior is exactly 1/2
    counted: np.ndarray  # bool per line: counted in k
    score: float  # s = c / k over the counted lines (crlhf.reward, shape "share")
    gold: bool = False

    @property
    def product(self) -> float:
        """``P(every counted line correct | labels) = prod_j posterior_j`` over the counted
        lines (the ``product`` shape of :mod:`crlhf.reward`; 0 with no counted line)."""
        from .reward import score

        return score(self.posteriors, self.counted, "product")

    def score_as(self, shape: str = "share", tau: float = 0.5, scored=None) -> float:
        """The score under a :mod:`crlhf.reward` shape, over ``scored`` (default: the counted lines)."""
        from .reward import score

        return score(self.posteriors, self.counted if scored is None else scored, shape, tau)


@dataclass(frozen=True)
class ReplayResult:
    """Per-line and per-program results of replaying a label log."""

    lines: pd.DataFrame  # program_id, line, posterior, consensus, counted
    scores: pd.DataFrame  # program_id, score, k, gold


def _check_prob(name: str, value: float, low: float = 0.0, high: float = 1.0, open_: bool = True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    ok = (low < v < high) if open_ else (low <= v <= high)
    if not ok:
        brackets = "()" if open_ else "[]"
        raise ValueError(f"{name} must lie in {brackets[0]}{low}, {high}{brackets[1]}, got {value!r}")
    return v


class CrowdModel:
    """Online Bayesian aggregation of line labels from annotators of unknown reliability.

    The defaults were chosen by measurement (``benchmarks/aggregation.py`` on the RTE and TEMP
    crowds, ``benchmarks/crowd_defaults.py`` on simulated crowds of 30, symmetric and
    code-shaped; ``benchmarks/RESULTS.md``); notebooks 01 and 02 say why. The default rule is
    ``"two_coin"``: without gold it beat majority vote on every data set measured, where eq (8)
    and the one-coin Beta estimate fell below it on the code-shaped crowds (a lazy annotator
    earns a high ``p_i`` there); it is as good as ``beta`` on RTE and TEMP. Eq (8), the paper's
    rule, stays available as ``reliability="eq8"``.

    Parameters
    ----------
    nu : initial reliability ``p_i`` of a new annotator (under ``two_coin``, the start of both coins).
    lam : step of eq (8) in logit space.
    tau : a line counts as correct in ``s = c/k`` when its posterior exceeds ``tau``.
    gold_certainty : ``pbar`` on gold lines; ``< 1`` so that ``logit(pbar)`` is finite.
    p_min, p_max : reliabilities are kept in ``[p_min, p_max]``; under eq (8) ``p_max`` also
        caps the consensus ``pbar`` (gold lines use ``gold_certainty`` as it is).
    leave_one_out : under eq (8), judge each annotator against the consensus of the others.
    count_blank : count blank and comment lines in ``k``.
    prior : ``p0 = P(line correct)`` before any label (under ``two_coin``, where the learnt prior starts).
    reliability : ``"eq8"`` (the paper's constant-step rule, which ranks annotators),
        ``"beta"``: a Beta-Bernoulli estimate that adds ``P(label right | the line's labels)``
        (``pbar`` of the reference answer when the label agrees with it, ``1 - pbar`` when not;
        ``gold_certainty`` on gold lines) to its successes, the E-step of EM done online; it
        converges to an annotator's accuracy (on gold, to ``gc*a + (1-gc)*(1-a)``); or
        ``"two_coin"`` (Dawid & Skene 1979; Raykar et al. 2010): a sensitivity
        ``a_i = P(+1 | line correct)`` and a specificity ``b_i = P(-1 | line wrong)`` per
        annotator, each a Beta posterior updated online program by program with the same
        E-step (a label adds ``P(line correct | labels)`` to the sensitivity's counts and
        ``P(line wrong | labels)`` to the specificity's; gold lines ``gold_certainty``), and the
        line prior ``pi = P(line correct)`` learnt online from the posteriors of the labelled
        lines (gold lines at ``gold_certainty``: measured better than leaving gold out, on
        simulated crowds where gold is drawn from the stream). Posteriors use
        the generalised eq (7), ``logit(pi) + sum_i [+1] log(a_i/(1-b_i)) + [-1] log((1-a_i)/b_i)``:
        a lazy annotator (``a_i -> 1, b_i -> 0``) gets likelihood ratios near 1 whatever its
        raw agreement. ``reliabilities`` then reports the balanced accuracy ``(a_i + b_i)/2``.
    beta_strength : pseudo-count of each Beta prior (``beta`` and both coins of ``two_coin``),
        centred on ``nu``; large enough that one unlucky first program cannot turn a crowd
        without gold upside down.
    prior_floor : under ``two_coin`` the learnt ``pi`` is kept in ``[prior_floor,
        1 - prior_floor]``, so that no crowd collapses to "every line correct" (or wrong), the
        failure of EM with a free prior on crowds that are mostly right.
    prior_strength : pseudo-count, in lines, of the Beta prior of ``pi`` (centred on ``prior``).
        The prior sees every labelled line while each coin sees only its annotator's, so with
        a weak prior ``pi`` runs ahead of the coins: on code crowds it reached the floor within
        a few programs and outvoted honest 3-2 "wrong" majorities while the coins were still at
        ``nu`` (``benchmarks/crowd_defaults.py``); 100 lines keep the two in step.
    """

    def __init__(
        self,
        nu: float = 0.7,
        lam: float = 0.002,
        tau: float = 0.5,
        gold_certainty: float = 0.99,
        p_min: float = 0.05,
        p_max: float = 0.95,
        leave_one_out: bool = True,
        count_blank: bool = False,
        prior: float = 0.5,
        reliability: str = "two_coin",
        beta_strength: float = 10.0,
        prior_floor: float = 0.1,
        prior_strength: float = 100.0,
    ):
        self.p_min = _check_prob("p_min", p_min)
        self.p_max = _check_prob("p_max", p_max)
        if not self.p_min < self.p_max:
            raise ValueError(f"p_min ({p_min}) must be below p_max ({p_max})")
        self.nu = _check_prob("nu", nu)
        if not self.p_min <= self.nu <= self.p_max:
            raise ValueError(f"nu ({nu}) must lie in [p_min, p_max] = [{p_min}, {p_max}]")
        self.lam = float(lam)
        if not (np.isfinite(self.lam) and self.lam >= 0):
            raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
        self.tau = _check_prob("tau", tau, open_=False)
        self.gold_certainty = _check_prob("gold_certainty", gold_certainty, 0.5, 1.0)
        self.prior = _check_prob("prior", prior)
        if not isinstance(reliability, str) or reliability not in RELIABILITY_METHODS:
            raise ValueError(f"reliability must be one of {RELIABILITY_METHODS}, got {reliability!r}")
        self.reliability = reliability
        self.beta_strength = float(beta_strength)
        if not (np.isfinite(self.beta_strength) and self.beta_strength > 0):
            raise ValueError(f"beta_strength must be > 0, got {beta_strength!r}")
        self.prior_floor = _check_prob("prior_floor", prior_floor, 0.0, 0.5, open_=False)
        if self.prior_floor == 0.5:
            raise ValueError(f"prior_floor must lie in [0, 0.5), got {prior_floor!r}")
        self.prior_strength = float(prior_strength)
        if not (np.isfinite(self.prior_strength) and self.prior_strength > 0):
            raise ValueError(f"prior_strength must be > 0, got {prior_strength!r}")
        self.leave_one_out = bool(leave_one_out)
        self.count_blank = bool(count_blank)

        self._prior_logit = float(logit(self.prior))
        self._lo, self._hi = float(logit(self.p_min)), float(logit(self.p_max))
        self._gold_logit = float(logit(self.gold_certainty))
        self._index: dict[Hashable, int] = {}
        self._names: list[Hashable] = []
        self._logit = np.zeros(0)  # logit(p_i): the weights of eq (7)
        self._a = np.zeros(0)  # Beta pseudo-counts (reliability="beta")
        self._b = np.zeros(0)
        # two_coin: Beta pseudo-counts (successes, failures) of sensitivity and specificity,
        # the label weights of the generalised eq (7), and the line prior's counts
        self._sens = np.zeros((2, 0))
        self._spec = np.zeros((2, 0))
        self._w_pos = np.zeros(0)  # log-likelihood ratio of a +1 label
        self._w_neg = np.zeros(0)  # ... of a -1 label
        self._pi = np.array([self.prior, 1 - self.prior]) * self.prior_strength
        pi0 = min(max(self.prior, self.prior_floor), 1 - self.prior_floor)
        self._pi_logit = float(logit(pi0))  # logit of the clipped learnt prior
        self._step = 0
        # (step, program_id, annotator indices, reliability, sensitivity, specificity)
        self._hist: list[tuple] = []

    # ------------------------------------------------------------------ annotators
    def add_annotators(self, annotators: Iterable[Hashable]) -> CrowdModel:
        """Register annotators with ``p_i = nu`` (Algorithm 1, line 3); known ones are left as they are."""
        if isinstance(annotators, (str, bytes)) or not isinstance(annotators, Iterable):
            annotators = [annotators]
        new = []
        for a in annotators:
            if not isinstance(a, Hashable) or a is None:
                raise TypeError(f"annotator must be a hashable id, got {a!r}")
            if a not in self._index:
                self._index[a] = len(self._names)
                self._names.append(a)
                new.append(self._index[a])
        if new:
            n = len(new)
            self._logit = np.concatenate([self._logit, np.full(n, float(logit(self.nu)))])
            self._a = np.concatenate([self._a, np.full(n, self.nu * self.beta_strength)])
            self._b = np.concatenate([self._b, np.full(n, (1 - self.nu) * self.beta_strength)])
            start = np.array([[self.nu], [1 - self.nu]]) * self.beta_strength
            self._sens = np.concatenate([self._sens, np.repeat(start, n, axis=1)], axis=1)
            self._spec = np.concatenate([self._spec, np.repeat(start, n, axis=1)], axis=1)
            w = float(logit(self.nu))
            self._w_pos = np.concatenate([self._w_pos, np.full(n, w)])
            self._w_neg = np.concatenate([self._w_neg, np.full(n, -w)])
            idx = np.asarray(new)
            nu = np.full(n, self.nu)
            self._hist.append((self._step, None, idx, nu, nu, nu))
        return self

    @property
    def annotators(self) -> list[Hashable]:
        return list(self._names)

    @property
    def reliabilities(self) -> pd.Series:
        """Current ``p_i`` of every annotator, indexed by annotator."""
        return pd.Series(expit(self._logit), index=pd.Index(self._names, name="annotator"),
                         name="reliability", dtype=float)

    def reliability_of(self, annotator: Hashable) -> float:
        return float(expit(self._logit[self._annotator_index(annotator)]))

    def _coins(self) -> tuple[np.ndarray, np.ndarray]:
        """Sensitivity and specificity of every annotator, clipped into ``[p_min, p_max]``
        (both ``p_i`` under a one-coin rule)."""
        if self.reliability != "two_coin":
            p = expit(self._logit)
            return p, p
        a = self._sens[0] / self._sens.sum(axis=0)
        b = self._spec[0] / self._spec.sum(axis=0)
        return np.clip(a, self.p_min, self.p_max), np.clip(b, self.p_min, self.p_max)

    @property
    def sensitivities(self) -> pd.Series:
        """Current ``a_i = P(label +1 | line correct)`` of every annotator (``p_i`` under a one-coin rule)."""
        return pd.Series(self._coins()[0], index=pd.Index(self._names, name="annotator"),
                         name="sensitivity", dtype=float)

    @property
    def specificities(self) -> pd.Series:
        """Current ``b_i = P(label -1 | line wrong)`` of every annotator (``p_i`` under a one-coin rule)."""
        return pd.Series(self._coins()[1], index=pd.Index(self._names, name="annotator"),
                         name="specificity", dtype=float)

    @property
    def log_likelihood_ratios(self) -> pd.DataFrame:
        """What one label of each annotator adds to a line's log-odds: ``plus`` for a +1 and
        ``minus`` for a -1; ``±logit(p_i)`` under a one-coin rule (eq 7), ``log(a_i/(1-b_i))``
        and ``log((1-a_i)/b_i)`` under two coins (both near 0 for a lazy annotator)."""
        if self.reliability == "two_coin":
            plus, minus = self._w_pos.copy(), self._w_neg.copy()
        else:
            plus, minus = self._logit.copy(), -self._logit
        return pd.DataFrame({"plus": plus, "minus": minus}, index=pd.Index(self._names, name="annotator"))

    @property
    def line_prior(self) -> float:
        """Current ``P(line correct)`` before any label: learnt under ``two_coin`` (kept in
        ``[prior_floor, 1 - prior_floor]``), else the fixed ``prior``."""
        return float(expit(self._line_prior_logit()))

    def _line_prior_logit(self) -> float:
        return self._pi_logit if self.reliability == "two_coin" else self._prior_logit

    def _label_weights(self, ann: np.ndarray, lab: np.ndarray) -> np.ndarray:
        """What each label adds to its line's log-odds: ``label * logit(p_i)`` (eq 7), or under
        two coins ``log(a_i/(1-b_i))`` for a +1 and ``log((1-a_i)/b_i)`` for a -1."""
        if self.reliability != "two_coin":
            return lab * self._logit[ann]
        return np.where(lab > 0, self._w_pos[ann], self._w_neg[ann])

    def _annotator_indices(self, annotators) -> np.ndarray:
        idx = pd.Index(self._names, dtype=object).get_indexer(pd.Index(annotators, dtype=object))
        if (idx < 0).any():
            self._annotator_index(np.asarray(annotators, dtype=object)[idx < 0][0])  # raises
        return idx.astype(np.intp)

    def _annotator_index(self, annotator) -> int:
        try:
            return self._index[annotator]
        except (KeyError, TypeError):
            raise ValueError(
                f"annotator {annotator!r} is not registered (field 'annotator'); "
                "call add_annotators first"
            ) from None

    @property
    def history(self) -> pd.DataFrame:
        """Every change of ``p_i``: a tidy frame ``step, program_id, annotator, reliability,
        sensitivity, specificity`` (the two coins; both equal ``p_i`` under a one-coin rule).

        Step 0 holds the initial ``nu``; step ``t`` the values after the ``t``-th program.
        """
        if not self._hist:
            return pd.DataFrame({"step": pd.Series(dtype=int), "program_id": pd.Series(dtype=object),
                                 "annotator": pd.Series(dtype=object),
                                 "reliability": pd.Series(dtype=float),
                                 "sensitivity": pd.Series(dtype=float),
                                 "specificity": pd.Series(dtype=float)})
        lengths = np.array([len(h[2]) for h in self._hist])
        names = np.empty(len(self._names), dtype=object)
        names[:] = self._names
        prog = np.empty(len(self._hist), dtype=object)
        prog[:] = [h[1] for h in self._hist]
        return pd.DataFrame({
            "step": np.repeat([h[0] for h in self._hist], lengths),
            "program_id": np.repeat(prog, lengths),
            "annotator": names[np.concatenate([h[2] for h in self._hist])],
            "reliability": np.concatenate([h[3] for h in self._hist]),
            "sensitivity": np.concatenate([h[4] for h in self._hist]),
            "specificity": np.concatenate([h[5] for h in self._hist]),
        })

    # ------------------------------------------------------------------ one program
    def ingest(self, labels, program: str | None = None, program_id: Hashable = None,
               n_lines: int | None = None) -> ProgramResult:
        """Posteriors, consensus and score of one program, then the reliability update
        (Algorithm 1, lines 10-23).

        ``labels``: a frame with columns ``line, annotator, label`` (+1/-1; the last row for a
        repeated line and annotator wins) or a mapping ``annotator -> [label per line]``
        (+1/-1, 0 = not labelled). ``program`` (its text) sets the line count and which lines
        count in ``k``; without it pass ``n_lines`` or all labelled lines up to the last count.
        """
        return self._program(labels, program, program_id, n_lines, truth=None, update=True)

    def calibrate(self, labels, truth, program: str | None = None, program_id: Hashable = None
                  ) -> ProgramResult:
        """Update reliabilities on a gold program whose line truth (+1/-1 per line) is known,
        with ``pbar = gold_certainty`` (Algorithm 1, lines 4-6)."""
        truth_arr = np.asarray(truth)
        if truth_arr.ndim != 1 or not np.isin(truth_arr, (1, -1)).all():
            raise ValueError("truth must be a 1-D sequence of +1 (correct) / -1 (wrong), one per line")
        return self._program(labels, program, program_id, len(truth_arr), truth=truth_arr,
                             update=True)

    def assess(self, labels, program: str | None = None, program_id: Hashable = None,
               n_lines: int | None = None) -> ProgramResult:
        """Like :meth:`ingest`, without updating any reliability (for dashboards)."""
        return self._program(labels, program, program_id, n_lines, truth=None, update=False)

    def assess_log(self, log: pd.DataFrame, programs: Mapping | None = None) -> pd.DataFrame:
        """Posteriors (eq 7) of every program in a label log under the current reliabilities,
        without updating any (for dashboards and active labelling), vectorised over all
        programs at once.

        ``log``: columns ``program_id, line, annotator, label`` (+ optional ``order``; the
        latest label of an annotator for a line wins); every annotator must be registered.
        ``programs``: ``program_id -> text``, for line counts and the lines counted in ``k``;
        without a text a program has as many lines as its last labelled one, all counted.
        Returns the frame of ``ReplayResult.lines``: ``program_id, line, posterior,
        consensus, counted``, programs in order of their first label.
        """
        frame = _latest_labels(log)
        ann = self._annotator_indices(frame["annotator"]) if len(frame) else np.zeros(0, np.intp)
        codes, pids = pd.factorize(frame["program_id"], sort=False)
        line = frame["line"].to_numpy(np.int64)
        lab = frame["label"].to_numpy(np.int64)
        n_prog = len(pids)
        max_line = np.full(n_prog, -1, dtype=np.int64)
        np.maximum.at(max_line, codes, line)
        n_lines = max_line + 1
        counted_parts: list[np.ndarray] = []
        for j, pid in enumerate(pids):
            if programs is not None and pid in programs:
                counted = counted_lines(programs[pid], self.count_blank)
                if max_line[j] >= len(counted):
                    raise ValueError(f"program {pid!r}: line {max_line[j]} is out of range for "
                                     f"{len(counted)} lines (field 'line')")
                n_lines[j] = len(counted)
            else:
                counted = np.ones(n_lines[j], dtype=bool)
            counted_parts.append(counted)
        offsets = np.concatenate([[0], np.cumsum(n_lines)])
        total = int(offsets[-1])
        logodds = self._line_prior_logit() + np.bincount(offsets[codes] + line,
                                                         weights=self._label_weights(ann, lab), minlength=total)
        pid_obj = np.empty(n_prog, dtype=object)
        pid_obj[:] = list(pids)
        return pd.DataFrame({
            "program_id": np.repeat(pid_obj, n_lines),
            "line": np.arange(total) - np.repeat(offsets[:-1], n_lines),
            "posterior": expit(logodds),
            "consensus": np.sign(logodds).astype(np.int8),
            "counted": np.concatenate(counted_parts) if counted_parts else np.zeros(0, dtype=bool),
        })

    def _program(self, labels, program, program_id, n_lines, truth, update) -> ProgramResult:
        counted = None
        if program is not None:
            counted = counted_lines(program, self.count_blank)
            if n_lines is not None and n_lines != len(counted):
                raise ValueError(f"n_lines={n_lines} but the program has {len(counted)} lines")
            n_lines = len(counted)
        line, ann, lab, n_lines = self._parse_labels(labels, n_lines)
        if counted is None:
            counted = np.ones(n_lines, dtype=bool)
        logodds = self._logodds(line, ann, lab, n_lines)
        if update:
            self._update(line, ann, lab, logodds, truth, program_id)
        return self._result(program_id, logodds, counted, truth is not None)

    def _result(self, program_id, logodds, counted, gold) -> ProgramResult:
        from .reward import score

        post = expit(logodds)
        s = score(post, counted, "share", self.tau)
        return ProgramResult(program_id, post, np.sign(logodds).astype(np.int8), counted, s, gold)

    def _parse_labels(self, labels, n_lines):
        if isinstance(labels, pd.DataFrame):
            missing = [c for c in ("line", "annotator", "label") if c not in labels.columns]
            if missing:
                raise ValueError(f"labels frame lacks column(s) {missing}; "
                                 "expected columns line, annotator, label")
            frame = latest_labels(labels)
            line = _int_column(frame["line"], "line")
            lab = _int_column(frame["label"], "label")
            bad = (lab != 1) & (lab != -1)
            if bad.any():
                raise ValueError(f"label {lab[bad][0].item()} at line {line[bad][0].item()}: "
                                 "labels must be +1 or -1")
            ann = self._annotator_indices(frame["annotator"])
        elif isinstance(labels, Mapping):
            rows = []
            for a, seq in labels.items():
                arr = np.asarray(seq)
                if arr.ndim != 1:
                    raise ValueError(f"labels of annotator {a!r} must be a 1-D sequence per line")
                if n_lines is not None and len(arr) != n_lines:
                    raise ValueError(f"labels of annotator {a!r} have {len(arr)} lines, "
                                     f"the program has {n_lines}")
                if not np.isin(arr, (1, -1, 0)).all():
                    raise ValueError(f"labels of annotator {a!r} must be +1, -1 or 0 (not labelled)")
                rows.append((self._annotator_index(a), arr.astype(np.int64)))
            lengths = {len(r[1]) for r in rows}
            if len(lengths) > 1:
                raise ValueError(f"annotators labelled different numbers of lines: {sorted(lengths)}")
            if n_lines is None:
                n_lines = lengths.pop() if lengths else 0
            line_l, ann_l, lab_l = [], [], []
            for idx, arr in rows:
                nz = np.flatnonzero(arr)
                line_l.append(nz)
                ann_l.append(np.full(len(nz), idx, dtype=np.intp))
                lab_l.append(arr[nz])
            line = np.concatenate(line_l) if rows else np.zeros(0, np.int64)
            ann = np.concatenate(ann_l) if rows else np.zeros(0, np.intp)
            lab = np.concatenate(lab_l) if rows else np.zeros(0, np.int64)
        else:
            raise TypeError("labels must be a DataFrame (line, annotator, label) or a mapping "
                            f"annotator -> labels per line, got {type(labels).__name__}")
        if n_lines is None:
            n_lines = int(line.max()) + 1 if len(line) else 0
        if len(line) and (line.min() < 0 or line.max() >= n_lines):
            bad = line[(line < 0) | (line >= n_lines)][0]
            raise ValueError(f"line {bad.item()} is out of range for a program of {n_lines} lines "
                             "(field 'line')")
        return line, ann, lab, int(n_lines)

    # ------------------------------------------------------------------ the maths
    def _logodds(self, line, ann, lab, n_lines) -> np.ndarray:
        """Eq (7) in long form: ``logit(p0) + sum_i eps_i logit(p_i)`` per line (under two coins
        its generalisation, see :meth:`_label_weights`)."""
        return self._line_prior_logit() + np.bincount(line, weights=self._label_weights(ann, lab),
                                                      minlength=n_lines)

    def _update(self, line, ann, lab, logodds, truth, program_id) -> None:
        """Eq (8) (or the Beta estimate) for every annotator who labelled this program."""
        self._step += 1
        if not len(line):
            return
        n = len(self._names)
        touched = np.flatnonzero(np.bincount(ann, minlength=n))
        if self.reliability == "two_coin":
            a, b = self._update_two_coin(line, ann, lab, logodds, truth, touched, n)
            self._hist.append((self._step, program_id, touched, (a + b) / 2, a, b))
            return
        if truth is not None:
            x = lab * truth[line] * self._gold_logit  # mu * logit(pbar) on gold lines
        else:
            x = lab * logodds[line]
            if self.reliability == "eq8":
                if self.leave_one_out:
                    x = x - self._logit[ann]  # lab * (S - lab * w_i), as lab**2 == 1
                np.clip(x, -self._hi, self._hi, out=x)  # pbar <= p_max
        if self.reliability == "eq8":
            inc = np.bincount(ann, weights=x, minlength=n)[touched]
            self._logit[touched] = np.clip(self._logit[touched] + self.lam * inc, self._lo, self._hi)
        else:
            # The E-step of EM: P(label right | all labels of the line), own label included;
            # judged by the others alone the credit would shrink towards 1/2.
            right = expit(x)
            a = np.bincount(ann, weights=right, minlength=n)[touched]
            total = np.bincount(ann, minlength=n)[touched]
            self._a[touched] += a
            self._b[touched] += total - a
            p = self._a[touched] / (self._a[touched] + self._b[touched])
            self._logit[touched] = logit(np.clip(p, self.p_min, self.p_max))
        rel = expit(self._logit[touched])
        self._hist.append((self._step, program_id, touched, rel, rel, rel))

    def _update_two_coin(self, line, ann, lab, logodds, truth, touched, n) -> tuple[np.ndarray, np.ndarray]:
        """The online E-step of the two-coin model (Dawid & Skene 1979; Raykar et al. 2010):
        ``q = P(line correct | labels)`` (``gold_certainty`` or ``1 - gold_certainty`` on gold
        lines); a ``+1`` adds ``q`` to the sensitivity's successes and ``1 - q`` to the
        specificity's failures, a ``-1`` the reverse; every labelled line adds ``q`` to the line prior.
        Returns the touched annotators' clipped ``(a_i, b_i)``."""
        if truth is not None:
            q_line = np.where(truth > 0, self.gold_certainty, 1 - self.gold_certainty)
        else:
            e = np.exp(-np.abs(logodds))  # expit, without the argument checks (hot path)
            q_line = np.where(logodds >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        q = q_line[line]
        neg = (lab < 0).astype(np.intp)
        # one bincount per coin: bins [0, n) take +1 labels, [n, 2n) take -1 labels
        self._sens += np.bincount(ann + n * neg, weights=q, minlength=2 * n).reshape(2, n)
        self._spec += np.bincount(ann + n * (1 - neg), weights=1 - q, minlength=2 * n).reshape(2, n)
        labelled = np.zeros(len(q_line), dtype=bool)
        labelled[line] = True
        q_sum, n_lab = float(q_line[labelled].sum()), int(labelled.sum())
        self._pi += (q_sum, n_lab - q_sum)
        pi = min(max(self._pi[0] / (self._pi[0] + self._pi[1]), self.prior_floor), 1 - self.prior_floor)
        self._pi_logit = float(np.log(pi) - np.log1p(-pi))
        sens, spec = self._sens[:, touched], self._spec[:, touched]
        a = np.clip(sens[0] / (sens[0] + sens[1]), self.p_min, self.p_max)
        b = np.clip(spec[0] / (spec[0] + spec[1]), self.p_min, self.p_max)
        self._w_pos[touched] = np.log(a) - np.log1p(-b)
        self._w_neg[touched] = np.log1p(-a) - np.log(b)
        ba = np.clip((a + b) / 2, self.p_min, self.p_max)
        self._logit[touched] = np.log(ba) - np.log1p(-ba)
        return a, b

    # ------------------------------------------------------------------ a whole log
    def replay(self, log: pd.DataFrame, gold=None, programs: Mapping | None = None) -> ReplayResult:
        """Ingest a whole label log, one program at a time, into this model.

        ``log``: columns ``program_id, line, annotator, label`` and optionally ``order``
        (rows are sorted by it, stably). The last label of an annotator for a line wins.
        Programs are ingested in order of their first label; unknown annotators are
        registered in order of their first label. ``gold``: the line truth of gold programs,
        a mapping ``program_id -> [+1/-1 per line]`` or a frame ``program_id, line, label``.
        ``programs``: ``program_id -> text``, for line counts and the lines counted in ``k``.
        :func:`crlhf.replay.replay_log` registers annotators first and calls this; it is the one
        replay path.
        """
        return self._replay_frame(_latest_labels(log), _gold_mapping(gold), programs)[0]

    # ------------------------------------------------------------------ state, for incremental replays
    def _state(self) -> tuple:
        """A copy of everything a program's update changes (not the annotator list)."""
        return (self._logit.copy(), self._a.copy(), self._b.copy(), self._sens.copy(), self._spec.copy(),
                self._w_pos.copy(), self._w_neg.copy(), self._pi.copy(), self._step, len(self._hist),
                self._pi_logit)

    def _restore(self, state: tuple) -> None:
        (self._logit, self._a, self._b, self._sens, self._spec, self._w_pos, self._w_neg, self._pi) = (
            x.copy() for x in state[:8])
        self._step, self._pi_logit = state[8], state[10]
        del self._hist[state[9]:]

    def _replay_frame(self, frame: pd.DataFrame, gold_map: dict, programs, keep_every: int | None = None,
                      offset: int = 0) -> tuple[ReplayResult, dict]:
        """:meth:`replay` on a log already reduced by ``_latest_labels``. With ``keep_every``,
        also the model's state before every program whose position (``+ offset``) is a multiple
        of it, as ``{position: state}`` (for :class:`crlhf.replay.IncrementalReplay`)."""
        snapshots: dict = {}
        ann_codes, ann_names = pd.factorize(frame["annotator"], sort=False)
        self.add_annotators(list(ann_names))
        ann_all = self._annotator_indices(ann_names)[ann_codes]
        prog_codes, prog_ids = pd.factorize(frame["program_id"], sort=False)
        order = np.argsort(prog_codes, kind="stable")
        line_all = frame["line"].to_numpy(np.int64)[order]
        lab_all = frame["label"].to_numpy(np.int64)[order]
        ann_all = ann_all[order]
        bounds = np.concatenate([[0], np.cumsum(np.bincount(prog_codes, minlength=len(prog_ids)))])
        max_line = np.full(len(prog_ids), -1, dtype=np.int64)
        np.maximum.at(max_line, prog_codes[order], line_all)

        n_lines = np.empty(len(prog_ids), dtype=np.int64)
        counted_list: list[np.ndarray | None] = []
        for j, pid in enumerate(prog_ids):
            counted = None
            n = int(max_line[j]) + 1
            if programs is not None and pid in programs:
                counted = counted_lines(programs[pid], self.count_blank)
                n = len(counted)
            if pid in gold_map:
                if counted is None:
                    n = max(n, len(gold_map[pid]))
                if len(gold_map[pid]) != n:
                    raise ValueError(f"gold truth of program {pid!r} has {len(gold_map[pid])} lines, "
                                     f"the program has {n}")
            if max_line[j] >= n:
                raise ValueError(f"program {pid!r}: line {max_line[j]} is out of range for "
                                 f"{n} lines (field 'line')")
            n_lines[j] = n
            counted_list.append(counted)

        offsets = np.concatenate([[0], np.cumsum(n_lines)])
        post = np.empty(offsets[-1])
        cons = np.empty(offsets[-1], dtype=np.int8)
        counted_all = np.ones(offsets[-1], dtype=bool)
        scores = np.empty(len(prog_ids))
        ks = np.empty(len(prog_ids), dtype=np.int64)
        is_gold = np.zeros(len(prog_ids), dtype=bool)
        for j, pid in enumerate(prog_ids):
            if keep_every is not None and (j + offset) % keep_every == 0:
                snapshots[j + offset] = self._state()
            sl = slice(bounds[j], bounds[j + 1])
            line, ann, lab, n = line_all[sl], ann_all[sl], lab_all[sl], int(n_lines[j])
            truth = gold_map.get(pid)
            logodds = self._logodds(line, ann, lab, n)
            self._update(line, ann, lab, logodds, truth, pid)
            given = counted_list[j]
            counted = given if given is not None else np.ones(n, dtype=bool)
            res = self._result(pid, logodds, counted, truth is not None)
            o = slice(offsets[j], offsets[j + 1])
            post[o], cons[o], counted_all[o] = res.posteriors, res.consensus, counted
            scores[j], ks[j], is_gold[j] = res.score, counted.sum(), truth is not None

        pid_obj = np.empty(len(prog_ids), dtype=object)
        pid_obj[:] = list(prog_ids)
        lines = pd.DataFrame({
            "program_id": np.repeat(pid_obj, n_lines),
            "line": np.arange(offsets[-1]) - np.repeat(offsets[:-1], n_lines),
            "posterior": post, "consensus": cons, "counted": counted_all,
        })
        return ReplayResult(lines, pd.DataFrame({"program_id": pid_obj, "score": scores,
                                                 "k": ks, "gold": is_gold})), snapshots


# ----------------------------------------------------------------------------- the label log
def latest_labels(log: pd.DataFrame) -> pd.DataFrame:
    """The rows of a label log that count: each annotator's latest label of each line (a relabel
    replaces the earlier label). Rows are taken in ``order`` when the log has that column, else
    as given; every column is kept. A frame of one program may leave out ``program_id``. The one
    owner of this rule: ingest, the replay, the loop, the TRL reward and the dashboard use it."""
    missing = [c for c in ("line", "annotator") if c not in log.columns]
    if missing:
        raise ValueError(f"labels lack column(s) {missing}; expected program_id, line, annotator, label")
    if "order" in log.columns:
        log = log.sort_values("order", kind="stable")
    keys = [c for c in ("program_id", "line", "annotator") if c in log.columns]
    return log[~log.duplicated(keys, keep="last").to_numpy()]


def _latest_labels(log) -> pd.DataFrame:
    """A label log checked and reduced to the latest label of each annotator for each line
    (sorted by ``order`` when there is one, stably); ``line`` and ``label`` as int64."""
    if not isinstance(log, pd.DataFrame):
        raise TypeError(f"log must be a DataFrame with columns {LOG_COLUMNS}")
    missing = [c for c in LOG_COLUMNS if c not in log.columns]
    if missing:
        raise ValueError(f"log lacks column(s) {missing}; expected {LOG_COLUMNS} (+ optional order)")
    frame = log.loc[:, [*LOG_COLUMNS, *(["order"] if "order" in log.columns else [])]]
    if "order" in frame.columns:
        frame = frame.sort_values("order", kind="stable")
    line_all = _int_column(frame["line"], "line")
    lab_all = _int_column(frame["label"], "label")
    bad = (lab_all != 1) & (lab_all != -1)
    if bad.any():
        row = frame.index[np.flatnonzero(bad)[0]]
        raise ValueError(f"log row {row}: label {lab_all[bad][0].item()} is not +1 or -1 "
                         "(field 'label')")
    if (line_all < 0).any():
        row = frame.index[np.flatnonzero(line_all < 0)[0]]
        raise ValueError(f"log row {row}: line must be >= 0 (field 'line')")
    if frame["annotator"].isna().any() or frame["program_id"].isna().any():
        field = "annotator" if frame["annotator"].isna().any() else "program_id"
        row = frame.index[np.flatnonzero(frame[field].isna().to_numpy())[0]]
        raise ValueError(f"log row {row}: missing {field}")
    return latest_labels(frame.assign(line=line_all, label=lab_all))


def _int_column(col: pd.Series, field: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise ValueError(f"row {col.index[i]}: {field} must be an integer, got {col.iloc[i]!r}")
    return values.astype(np.int64)


def _gold_mapping(gold) -> dict:
    if gold is None:
        return {}
    if isinstance(gold, pd.DataFrame):
        missing = [c for c in ("program_id", "line", "label") if c not in gold.columns]
        if missing:
            raise ValueError(f"gold frame lacks column(s) {missing}; expected program_id, line, label")
        out = {}
        for pid, g in gold.groupby("program_id", sort=False):
            lines = _int_column(g["line"], "line")
            truth = np.zeros(int(lines.max()) + 1, dtype=np.int64)
            truth[lines] = _int_column(g["label"], "label")
            out[pid] = truth
        gold = out
    result = {}
    for pid, truth in gold.items():
        arr = np.asarray(truth)
        if arr.ndim != 1 or not np.isin(arr, (1, -1)).all():
            raise ValueError(f"gold truth of program {pid!r} must be +1/-1 for every line")
        result[pid] = arr.astype(np.int64)
    return result


# ----------------------------------------------------------------------------- old import paths
_MOVED = {"replay_log": "crlhf.replay", "IncrementalReplay": "crlhf.replay", "labels_frame": "crlhf.replay",
          "scores_at": "crlhf.crowd_views", "truth_frame": "crlhf.crowd_views",
          "threshold_curve": "crlhf.crowd_views", "annotator_summary": "crlhf.crowd_views",
          "LINE_COLUMNS": "crlhf.crowd_views"}

__getattr__ = moved_names(__name__, _MOVED)
