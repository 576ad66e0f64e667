"""Simulated annotators and crowds: line labels with known skill, seeded and reproducible.

A :class:`SimulatedAnnotator` labels a line ``+1`` (correct) or ``-1`` (wrong). It is right
with probability ``sensitivity`` on a correct line and ``specificity`` on a wrong one (both
equal to ``accuracy`` unless given), and labels a line at all with probability ``coverage``.
The kinds:

- ``reliable``: better than chance, ``(sensitivity + specificity) / 2 > 1/2``;
- ``spammer``: a fair coin, right with probability exactly 1/2 on every line;
- ``adversary``: worse than chance (``accuracy < 1/2``; default 0.3), so it flips most labels;
- ``lazy``: labels every line ``+1`` whatever the truth (sensitivity 1, specificity 0). Its
  ``accuracy`` is recorded as 1/2, the balanced accuracy: its labels carry no information,
  though its raw agreement with the truth equals the share of correct lines.
- ``harsh``: flags correct lines, ``sensitivity < specificity`` (default 0.6 and 0.95): it
  catches most wrong lines but marks many correct ones wrong.
- ``biased``: class-biased with set rates, ``sensitivity != specificity`` given explicitly
  (e.g. a lenient annotator, 0.97 and 0.4, who passes most wrong lines).

``accuracy`` is the balanced accuracy ``(sensitivity + specificity) / 2`` throughout: on code,
where most lines are correct, the raw agreement of a lenient or lazy annotator looks high
while it says little about the wrong lines. :func:`code_crowd` mixes these kinds.

A :class:`Crowd` holds annotators and a seed; the same seed gives the same labels. Labels
come as a *label frame* with columns ``program_id, line, annotator, label``, the format that
``crlhf.crowd.CrowdModel.replay`` reads. All labels are generated with array operations, no
per-label Python loop (``synthetic_log`` makes a million labels in well under a second).
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["KINDS", "HARSH_RATES", "RELIABLE_RANGE", "WEAK_RANGE", "SimulatedAnnotator", "reliable", "spammer",
           "adversary", "lazy", "harsh", "biased", "Crowd", "make_crowd", "paper_crowd", "noisy_crowd",
           "LENIENT_SENSITIVITY", "LENIENT_SPECIFICITY", "HARSH_SENSITIVITY", "HARSH_SPECIFICITY", "code_crowd",
           "random_truths", "synthetic_log"]

KINDS = ("reliable", "spammer", "adversary", "lazy", "harsh", "biased")

HARSH_RATES = (0.6, 0.95)
"""Default ``(sensitivity, specificity)`` of a harsh annotator."""
RELIABLE_RANGE = (0.6, 0.95)
"""Accuracies of the reliable annotators of :func:`paper_crowd` / :func:`noisy_crowd`."""
WEAK_RANGE = (0.53, 0.57)
"""Accuracies of the weak (barely better than chance) annotators, i.e. "near 0.55"."""


# ---------------------------------------------------------------------------- validation
def _probability(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    v = float(value)
    if not (0.0 <= v <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def _count(value, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"rng/seed must be a numpy Generator, an int or None, got {rng!r}") from exc


def _truth(truth, name: str = "truth") -> np.ndarray:
    """A 1-D int64 array of +1 / -1 (line correct / wrong), or a clear error."""
    try:
        arr = np.asarray(truth)
    except Exception as exc:  # ragged nested sequences and the like
        raise ValueError(f"{name} must be a 1-D sequence of +1 / -1 per line") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of +1 / -1 per line, got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        if arr.size:
            raise ValueError(f"{name} must hold +1 (correct) / -1 (wrong), got dtype {arr.dtype}")
        return np.zeros(0, dtype=np.int64)
    bad = (arr != 1) & (arr != -1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {arr[i]!r}: line truth must be +1 (correct) or -1 (wrong)")
    return arr.astype(np.int64)


# ---------------------------------------------------------------------------- annotators
@dataclass(frozen=True)
class SimulatedAnnotator:
    """One simulated annotator (immutable).

    ``accuracy``: ``P(label == truth)``; in general the balanced accuracy
    ``(sensitivity + specificity) / 2``. ``sensitivity = P(+1 | line correct)``,
    ``specificity = P(-1 | line wrong)``: give both or neither (then both equal ``accuracy``).
    ``coverage``: probability of labelling a given line at all. ``accuracy`` defaults by kind
    (spammer 0.5, adversary 0.3, lazy 0.5); a reliable annotator needs one.
    """

    name: Hashable
    kind: str = "reliable"
    accuracy: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    coverage: float = 1.0

    def __post_init__(self):
        if self.name is None or not isinstance(self.name, Hashable):
            raise TypeError(f"name must be a hashable annotator id, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        acc = None if self.accuracy is None else _probability(self.accuracy, "accuracy")
        if (self.sensitivity is None) != (self.specificity is None):
            raise ValueError("sensitivity and specificity must be given together (or neither)")
        if self.sensitivity is not None:
            sens = _probability(self.sensitivity, "sensitivity")
            spec = _probability(self.specificity, "specificity")
            balanced = (sens + spec) / 2
            if acc is not None and not math.isclose(acc, balanced, abs_tol=1e-12):
                raise ValueError(f"accuracy ({acc}) must equal (sensitivity + specificity) / 2 "
                                 f"= {balanced} when all three are given")
            acc = balanced
        else:
            if self.kind == "biased":
                raise ValueError("a biased annotator needs its sensitivity and specificity "
                                 "(class-biased with set rates)")
            if self.kind == "harsh":
                if acc is not None:
                    raise ValueError("a harsh annotator is given by sensitivity and specificity, "
                                     "not accuracy (default 0.6 and 0.95: use harsh())")
                sens, spec = HARSH_RATES
                acc = (sens + spec) / 2
            elif acc is None:
                acc = {"spammer": 0.5, "adversary": 0.3, "lazy": 0.5}.get(self.kind)
                if acc is None:
                    raise ValueError("accuracy is required for a reliable annotator")
            if self.kind != "harsh":
                sens = spec = 1.0 if self.kind == "lazy" else acc
            if self.kind == "lazy":
                spec = 0.0
        if self.kind == "reliable" and not acc > 0.5:
            raise ValueError(f"accuracy of a reliable annotator must exceed 0.5, got {acc} "
                             "(use kind='spammer' for 0.5, 'adversary' below)")
        if self.kind == "spammer" and not (sens == spec == 0.5):
            raise ValueError(f"accuracy of a spammer is exactly 0.5, got sensitivity {sens}, "
                             f"specificity {spec}")
        if self.kind == "adversary" and not acc < 0.5:
            raise ValueError(f"accuracy of an adversary must be below 0.5, got {acc}")
        if self.kind == "harsh" and not sens < spec:
            raise ValueError(f"a harsh annotator flags correct lines: sensitivity ({sens}) must be "
                             f"below specificity ({spec})")
        if self.kind == "biased" and sens == spec:
            raise ValueError(f"a biased annotator has sensitivity != specificity, got {sens} for both "
                             "(use kind='reliable')")
        if self.kind == "lazy" and not (sens == 1.0 and spec == 0.0 and acc == 0.5):
            raise ValueError("a lazy annotator labels every line +1: sensitivity 1, specificity 0, "
                             f"accuracy 0.5; got {sens}, {spec}, {acc}")
        cov = _probability(self.coverage, "coverage")
        if cov == 0.0:
            raise ValueError("coverage must lie in (0, 1]; an annotator with coverage 0 never labels")
        object.__setattr__(self, "accuracy", acc)
        object.__setattr__(self, "sensitivity", sens)
        object.__setattr__(self, "specificity", spec)
        object.__setattr__(self, "coverage", cov)

    def p_plus(self, truth) -> np.ndarray:
        """``P(label = +1)`` for each line of the given truth (+1 / -1)."""
        t = _truth(truth)
        sens, spec = self.sensitivity, self.specificity
        assert sens is not None and spec is not None  # __post_init__ sets both
        return np.where(t > 0, sens, 1.0 - spec)


def reliable(name: Hashable, accuracy: float, coverage: float = 1.0) -> SimulatedAnnotator:
    """An annotator right with probability ``accuracy`` (> 0.5) on every line."""
    return SimulatedAnnotator(name, "reliable", accuracy, coverage=coverage)


def spammer(name: Hashable, coverage: float = 1.0) -> SimulatedAnnotator:
    """An annotator who labels every line by a fair coin (accuracy exactly 0.5)."""
    return SimulatedAnnotator(name, "spammer", 0.5, coverage=coverage)


def adversary(name: Hashable, accuracy: float = 0.3, coverage: float = 1.0) -> SimulatedAnnotator:
    """An annotator right with probability ``accuracy`` < 0.5: it flips most labels."""
    return SimulatedAnnotator(name, "adversary", accuracy, coverage=coverage)


def lazy(name: Hashable, coverage: float = 1.0) -> SimulatedAnnotator:
    """An annotator who labels every line +1 (correct) whatever the truth."""
    return SimulatedAnnotator(name, "lazy", coverage=coverage)


def harsh(name: Hashable, sensitivity: float = HARSH_RATES[0], specificity: float = HARSH_RATES[1],
          coverage: float = 1.0) -> SimulatedAnnotator:
    """An annotator who flags correct lines: ``P(+1 | correct) = sensitivity`` below
    ``P(-1 | wrong) = specificity``."""
    return SimulatedAnnotator(name, "harsh", sensitivity=sensitivity, specificity=specificity,
                              coverage=coverage)


def biased(name: Hashable, sensitivity: float, specificity: float, coverage: float = 1.0
           ) -> SimulatedAnnotator:
    """A class-biased annotator with set rates ``P(+1 | correct) = sensitivity`` and
    ``P(-1 | wrong) = specificity`` (they must differ)."""
    return SimulatedAnnotator(name, "biased", sensitivity=sensitivity, specificity=specificity,
                              coverage=coverage)


# ---------------------------------------------------------------------------- the crowd
@dataclass(frozen=True)
class _Batch:
    """Programs to label, flattened: the truth of every line and each program's length."""

    ids: pd.Index
    flat: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "starts", np.cumsum(self.lengths) - self.lengths)


class Crowd:
    """Simulated annotators and a seeded random stream for their labels.

    Labels come from ``self.rng``, a ``numpy.random.Generator`` seeded by ``seed``: two crowds
    built alike with the same seed give the same labels call after call. ``reset()`` restarts
    the stream; every labelling method also takes its own ``rng``.
    """

    def __init__(self, annotators: Iterable[SimulatedAnnotator], seed=0):
        anns = tuple(annotators)
        if not anns:
            raise ValueError("annotators: a crowd needs at least one annotator")
        for a in anns:
            if not isinstance(a, SimulatedAnnotator):
                raise TypeError(f"annotators must be SimulatedAnnotator, got {type(a).__name__}")
        dup = [n for n, c in Counter(a.name for a in anns).items() if c > 1]
        if dup:
            raise ValueError(f"annotators: names must be unique, repeated {dup[:5]}")
        self.annotators = anns
        self.seed = seed
        self.rng = _generator(seed)
        self._index = {a.name: i for i, a in enumerate(anns)}
        self._names = np.empty(len(anns), dtype=object)
        self._names[:] = [a.name for a in anns]
        self._sens = np.array([a.sensitivity for a in anns])
        self._spec = np.array([a.specificity for a in anns])
        self._cov = np.array([a.coverage for a in anns])

    # -------------------------------------------------------------- read-only views
    def __len__(self) -> int:
        return len(self.annotators)

    def __iter__(self):
        return iter(self.annotators)

    def __getitem__(self, name: Hashable) -> SimulatedAnnotator:
        try:
            return self.annotators[self._index[name]]
        except (KeyError, TypeError):
            raise KeyError(f"annotator {name!r} is not in this crowd") from None

    def __repr__(self) -> str:
        mix = Counter(a.kind for a in self.annotators)
        parts = ", ".join(f"{mix[k]} {k}" for k in KINDS if mix[k])
        return f"Crowd({len(self)} annotators: {parts}; seed={self.seed!r})"

    @property
    def names(self) -> list[Hashable]:
        return list(self._names)

    @property
    def accuracies(self) -> pd.Series:
        """True accuracy of each annotator, indexed by annotator."""
        return self.summary()["accuracy"]

    def summary(self) -> pd.DataFrame:
        """One row per annotator: ``kind, accuracy, sensitivity, specificity, coverage``."""
        return pd.DataFrame(
            {"kind": [a.kind for a in self.annotators],
             "accuracy": [a.accuracy for a in self.annotators],
             "sensitivity": self._sens, "specificity": self._spec, "coverage": self._cov},
            index=pd.Index(self._names, name="annotator"))

    def reset(self, seed=None) -> Crowd:
        """Restart the label stream from ``seed`` (default: the crowd's own seed)."""
        if seed is not None:
            self.seed = seed
        self.rng = _generator(self.seed)
        return self

    # -------------------------------------------------------------- labelling
    def label_program(self, truth, program_id: Hashable = None, annotators=None, k: int | None = None,
                      rng=None) -> pd.DataFrame:
        """Label the lines of one program whose line truth (+1 / -1 per line) is given.

        Every annotator labels (each line with probability ``coverage``), or only those named
        in ``annotators``, or ``k`` of them drawn at random without replacement.
        """
        t = _truth(truth)
        batch = _Batch(_object_index([program_id]), t, np.array([len(t)], dtype=np.int64))
        return self._generate(batch, self._pool(annotators), k, rng)

    def label_programs(self, truths, k: int | None = None, annotators=None, rng=None) -> pd.DataFrame:
        """Label many programs at once (vectorised over all their lines).

        ``truths``: a mapping ``program_id -> [+1/-1 per line]``, a sequence of such lists
        (program ids 0, 1, ...), or a 2-D array ``(n_programs, n_lines)``. Each program is
        labelled by every annotator (or those in ``annotators``), or by ``k`` drawn afresh
        for each program.
        """
        return self._generate(_batch(truths), self._pool(annotators), k, rng)

    def gold_log(self, n_gold: int = 5, lines: int | Sequence[int] = 8, wrong_rate: float = 0.3,
                 seed=None) -> tuple[pd.DataFrame, dict]:
        """Gold calibration data: every annotator labels every line of ``n_gold`` gold programs.

        Each gold line is wrong with probability ``wrong_rate``; ``lines`` is the number of
        lines per gold program (one int, or one per program). ``coverage`` does not apply: gold
        is answered in full. Returns ``(log, gold)``: the label frame (program ids ``"gold-0"``,
        ``"gold-1"``, ...) and ``{program_id: truth array}``, ready for
        ``CrowdModel.replay(log, gold=gold)``. ``seed`` draws from its own stream (default:
        the crowd's).
        """
        n_gold = _count(n_gold, "n_gold", 1)
        if isinstance(lines, numbers.Integral) and not isinstance(lines, bool):
            lengths = np.full(n_gold, _count(lines, "lines", 1), dtype=np.int64)
        else:
            if isinstance(lines, (str, bytes)) or not isinstance(lines, Iterable):
                raise TypeError(f"lines must be an int or one int per gold program, got {lines!r}")
            lengths = np.array([_count(n, "lines", 1) for n in lines], dtype=np.int64)
            if len(lengths) != n_gold:
                raise ValueError(f"lines has {len(lengths)} entries, expected n_gold = {n_gold}")
        wrong_rate = _probability(wrong_rate, "wrong_rate")
        gen = self.rng if seed is None else _generator(seed)
        flat = np.where(gen.random(int(lengths.sum())) < wrong_rate, -1, 1).astype(np.int64)
        ids = pd.Index([f"gold-{j}" for j in range(n_gold)], dtype=object)
        batch = _Batch(ids, flat, lengths)
        log = self._generate(batch, np.arange(len(self)), None, gen, full_coverage=True)
        gold = {pid: flat[s:s + n].copy() for pid, s, n in zip(ids, batch.starts, lengths, strict=True)}
        return log, gold

    # -------------------------------------------------------------- the core
    def _pool(self, annotators) -> np.ndarray:
        """Crowd indices of the named annotators (all when ``None``)."""
        if annotators is None:
            return np.arange(len(self))
        if isinstance(annotators, (str, bytes, SimulatedAnnotator)) or not isinstance(annotators, Iterable):
            annotators = [annotators]
        idx = []
        for a in annotators:
            key = a.name if isinstance(a, SimulatedAnnotator) else a
            try:
                idx.append(self._index[key])
            except (KeyError, TypeError):
                raise ValueError(f"annotators: {key!r} is not in this crowd") from None
        if not idx:
            raise ValueError("annotators: empty selection")
        if len(set(idx)) != len(idx):
            raise ValueError("annotators: the selection names an annotator twice")
        return np.asarray(idx, dtype=np.intp)

    def _generate(self, batch: _Batch, pool: np.ndarray, k, rng, full_coverage: bool = False
                  ) -> pd.DataFrame:
        """All labels of a batch of programs, by array operations only.

        Rows come program by program, then annotator by annotator (crowd order), then line.
        """
        gen = self.rng if rng is None else _generator(rng)
        n_prog = len(batch.lengths)
        if k is None:
            kk = len(pool)
            sel = np.broadcast_to(pool, (n_prog, kk))
        else:
            kk = _count(k, "k", 1)
            if kk > len(pool):
                raise ValueError(f"k = {kk} is larger than the {len(pool)} annotators available")
            draw = np.argsort(gen.random((n_prog, len(pool))), axis=1)[:, :kk]
            sel = np.sort(pool[draw], axis=1)
        block = kk * batch.lengths
        total = int(block.sum())
        prog = np.repeat(np.arange(n_prog), block)
        r = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(block) - block, block)
        length = batch.lengths[prog]
        slot = r // np.maximum(length, 1)
        line = r - slot * length
        ann = sel[prog, slot]
        truth = batch.flat[batch.starts[prog] + line]
        p_plus = np.where(truth > 0, self._sens[ann], 1.0 - self._spec[ann])
        label = np.where(gen.random(total) < p_plus, 1, -1).astype(np.int64)
        if not full_coverage and (self._cov[pool] < 1.0).any():
            keep = gen.random(total) < self._cov[ann]
            prog, line, ann, label = prog[keep], line[keep], ann[keep], label[keep]
        return pd.DataFrame({"program_id": batch.ids.take(prog), "line": line,
                             "annotator": self._names[ann], "label": label})


def _batch(truths) -> _Batch:
    """Normalise the ``truths`` argument of :meth:`Crowd.label_programs`."""
    if isinstance(truths, np.ndarray) and truths.ndim == 2:
        n_prog, n_lines = truths.shape
        flat = _truth(truths.ravel(), "truths")
        return _Batch(pd.RangeIndex(n_prog), flat, np.full(n_prog, n_lines, dtype=np.int64))
    if isinstance(truths, Mapping):
        ids = list(truths.keys())
        seqs = list(truths.values())
    elif isinstance(truths, (str, bytes)) or not isinstance(truths, Iterable):
        raise TypeError("truths must be a mapping program_id -> [+1/-1 per line], a sequence of "
                        f"such lists, or a 2-D array; got {type(truths).__name__}")
    else:
        seqs = list(truths)
        ids = list(range(len(seqs)))
    arrays = [_truth(t, f"truths[{pid!r}]") for pid, t in zip(ids, seqs, strict=True)]
    index = pd.RangeIndex(len(seqs)) if isinstance(ids, range) else _object_index(ids)
    flat = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    return _Batch(index, flat, np.array([len(a) for a in arrays], dtype=np.int64))


def _object_index(ids: list) -> pd.Index:
    arr = np.empty(len(ids), dtype=object)
    arr[:] = ids
    return pd.Index(arr, dtype=object)


# ---------------------------------------------------------------------------- crowd builders
def _names(n: int) -> list[str]:
    width = max(2, len(str(n - 1)))
    return [f"a{i:0{width}d}" for i in range(n)]


def make_crowd(accuracies: Sequence[float] = (), *, spammers: int = 0, adversaries: int = 0,
               lazy_annotators: int = 0, harsh_annotators: int = 0, adversary_accuracy: float = 0.3,
               coverage: float = 1.0, names: Sequence[Hashable] | None = None, seed=0) -> Crowd:
    """A crowd from a list of accuracies, plus extra spammers, adversaries, lazy and harsh
    annotators (``HARSH_RATES``).

    An accuracy above 0.5 makes a reliable annotator, exactly 0.5 a spammer, below 0.5 an
    adversary. Order: the ``accuracies`` first, then the spammers, adversaries, lazy and harsh
    ones. Names default to ``a00, a01, ...``; ``coverage`` applies to all.
    """
    if isinstance(accuracies, (str, bytes)) or not isinstance(accuracies, Iterable):
        raise TypeError(f"accuracies must be a sequence of numbers, got {accuracies!r}")
    accs = [_probability(a, "accuracies") for a in accuracies]
    spammers = _count(spammers, "spammers")
    adversaries = _count(adversaries, "adversaries")
    lazy_annotators = _count(lazy_annotators, "lazy_annotators")
    harsh_annotators = _count(harsh_annotators, "harsh_annotators")
    n = len(accs) + spammers + adversaries + lazy_annotators + harsh_annotators
    if n == 0:
        raise ValueError("accuracies: a crowd needs at least one annotator")
    if names is None:
        names = _names(n)
    else:
        names = list(names)
        if len(names) != n:
            raise ValueError(f"names has {len(names)} entries for {n} annotators")
    anns = []
    for name, acc in zip(names, accs, strict=False):  # the rest are spammers, adversaries, ...
        kind = "reliable" if acc > 0.5 else "spammer" if acc == 0.5 else "adversary"
        anns.append(SimulatedAnnotator(name, kind, acc, coverage=coverage))
    rest = iter(names[len(accs):])
    anns += [spammer(next(rest), coverage) for _ in range(spammers)]
    anns += [adversary(next(rest), adversary_accuracy, coverage) for _ in range(adversaries)]
    anns += [lazy(next(rest), coverage) for _ in range(lazy_annotators)]
    anns += [harsh(next(rest), coverage=coverage) for _ in range(harsh_annotators)]
    return Crowd(anns, seed=seed)


def _skill_rng(seed) -> np.random.Generator:
    """The stream that draws a builder's accuracies: separate from the crowd's label stream."""
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    except (TypeError, ValueError) as exc:
        raise TypeError(f"seed must be an int or None, got {seed!r}") from exc


def paper_crowd(n: int = 30, seed=0) -> Crowd:
    """A crowd of varying skill like the paper's 30 annotators.

    Exactly: ``round(n / 10)`` weak annotators (3 of 30) with accuracy uniform in
    ``WEAK_RANGE`` = [0.53, 0.57] and the rest reliable, uniform in ``RELIABLE_RANGE`` =
    [0.6, 0.95]; all of kind ``reliable``, full coverage, their order shuffled by ``seed``.
    """
    n = _count(n, "n", 1)
    gen = _skill_rng(seed)
    n_weak = int(math.floor(n / 10 + 0.5))
    accs = np.concatenate([gen.uniform(*WEAK_RANGE, n_weak),
                           gen.uniform(*RELIABLE_RANGE, n - n_weak)])
    return make_crowd(gen.permutation(accs).tolist(), seed=seed)


def noisy_crowd(n: int = 30, seed=0, weak_fraction: float = 1 / 3) -> Crowd:
    """A crowd where ``round(n * weak_fraction)`` annotators are noisy (10 of 30), the rest
    reliable with accuracy uniform in [0.6, 0.95].

    Of the noisy ones: if there are at least 4, one adversary (accuracy 0.3) and one lazy
    annotator; the remainder split into spammers (the larger half) and weak annotators
    (accuracy uniform in [0.53, 0.57]). For n = 30: 20 reliable, 4 weak, 4 spammers,
    1 adversary, 1 lazy. Order shuffled by ``seed``; see ``crowd.summary()`` for the kinds.
    """
    n = _count(n, "n", 1)
    weak_fraction = _probability(weak_fraction, "weak_fraction")
    gen = _skill_rng(seed)
    n_noisy = int(math.floor(n * weak_fraction + 0.5))
    n_adv = n_lazy = 1 if n_noisy >= 4 else 0
    rest = n_noisy - n_adv - n_lazy
    n_spam, n_weak = (rest + 1) // 2, rest // 2
    accs = np.concatenate([gen.uniform(*RELIABLE_RANGE, n - n_noisy), gen.uniform(*WEAK_RANGE, n_weak)])
    kinds = ["reliable"] * len(accs) + ["spammer"] * n_spam + ["adversary"] * n_adv + ["lazy"] * n_lazy
    acc_of: list[float | None] = [*accs, *[0.5] * n_spam, *[0.3] * n_adv, *[None] * n_lazy]
    order = gen.permutation(n)
    anns = [SimulatedAnnotator(name, kinds[j], None if acc_of[j] is None else float(acc_of[j]))
            for name, j in zip(_names(n), order, strict=True)]
    return Crowd(anns, seed=seed)


LENIENT_SENSITIVITY = (0.9, 0.99)
"""Sensitivity range of the lenient (class-biased) annotators of :func:`code_crowd`."""
LENIENT_SPECIFICITY = (0.3, 0.6)
"""Specificity range of the lenient annotators: they pass most wrong lines."""
HARSH_SENSITIVITY = (0.5, 0.7)
"""Sensitivity range of the harsh annotators of :func:`code_crowd`."""
HARSH_SPECIFICITY = (0.9, 0.99)
"""Specificity range of the harsh annotators of :func:`code_crowd`."""


def code_crowd(n: int = 30, seed=0, lazy_fraction: float = 0.2, harsh_fraction: float = 0.1,
               lenient_fraction: float = 0.3) -> Crowd:
    """A crowd shaped like annotators of code, who are not symmetric (most lines are correct).

    ``round(n * lazy_fraction)`` lazy annotators (every line +1; 6 of 30),
    ``round(n * harsh_fraction)`` harsh ones (sensitivity uniform in ``HARSH_SENSITIVITY``,
    specificity in ``HARSH_SPECIFICITY``; 3 of 30), ``round(n * lenient_fraction)`` lenient
    class-biased ones (sensitivity in ``LENIENT_SENSITIVITY``, specificity in
    ``LENIENT_SPECIFICITY``; 9 of 30), the rest reliable with accuracy uniform in
    ``RELIABLE_RANGE`` (12 of 30). Order shuffled by ``seed``; ``crowd.summary()`` gives kinds
    and rates. Label it with a high ``correct_rate`` (e.g. ``random_truths(..., 0.85)``).
    """
    n = _count(n, "n", 1)
    fractions = [_probability(f, name) for f, name in ((lazy_fraction, "lazy_fraction"),
                                                        (harsh_fraction, "harsh_fraction"),
                                                        (lenient_fraction, "lenient_fraction"))]
    if sum(fractions) > 1:
        raise ValueError(f"lazy_fraction + harsh_fraction + lenient_fraction must be <= 1, got {sum(fractions)}")
    n_lazy, n_harsh, n_lenient = (int(math.floor(n * f + 0.5)) for f in fractions)
    n_lenient = min(n_lenient, n - n_lazy - n_harsh)
    n_rel = n - n_lazy - n_harsh - n_lenient
    gen = _skill_rng(seed)
    rel = gen.uniform(*RELIABLE_RANGE, n_rel)
    hs, hp = gen.uniform(*HARSH_SENSITIVITY, n_harsh), gen.uniform(*HARSH_SPECIFICITY, n_harsh)
    ls, lp = gen.uniform(*LENIENT_SENSITIVITY, n_lenient), gen.uniform(*LENIENT_SPECIFICITY, n_lenient)
    makers = ([lambda name, a=a: reliable(name, float(a)) for a in rel]
              + [lambda name: lazy(name)] * n_lazy
              + [lambda name, s=s_, p=p_: harsh(name, float(s), float(p)) for s_, p_ in zip(hs, hp, strict=True)]
              + [lambda name, s=s_, p=p_: biased(name, float(s), float(p)) for s_, p_ in zip(ls, lp, strict=True)])
    order = gen.permutation(n)
    return Crowd([makers[j](name) for name, j in zip(_names(n), order, strict=True)], seed=seed)


# ---------------------------------------------------------------------------- benchmark data
def random_truths(n_programs: int, n_lines: int, correct_rate: float = 0.7, seed=0) -> np.ndarray:
    """Line truth for ``n_programs`` programs of ``n_lines`` lines: ``(n_programs, n_lines)`` of
    +1 (correct, with probability ``correct_rate``) / -1."""
    n_programs = _count(n_programs, "n_programs")
    n_lines = _count(n_lines, "n_lines", 1)
    correct_rate = _probability(correct_rate, "correct_rate")
    gen = _generator(seed)
    return np.where(gen.random((n_programs, n_lines)) < correct_rate, 1, -1).astype(np.int64)


def synthetic_log(n_programs: int, n_lines: int, n_annotators: int, per_program: int,
                  accuracies: Sequence[float] | None = None, correct_rate: float = 0.7, seed=0
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Benchmark-scale data: ``n_programs`` programs of ``n_lines`` lines, each labelled in full
    by ``per_program`` annotators drawn from ``n_annotators``.

    ``accuracies`` default to those of ``paper_crowd(n_annotators, seed)``. Returns
    ``(log, truth)``: the label frame (program ids 0, 1, ...) and a frame
    ``program_id, line, label`` of the line truth (the gold-frame format of
    ``CrowdModel.replay``).
    """
    n_annotators = _count(n_annotators, "n_annotators", 1)
    per_program = _count(per_program, "per_program", 1)
    if per_program > n_annotators:
        raise ValueError(f"per_program = {per_program} is larger than n_annotators = {n_annotators}")
    if accuracies is None:
        crowd = paper_crowd(n_annotators, seed=seed)
    else:
        accs = list(accuracies)
        if len(accs) != n_annotators:
            raise ValueError(f"accuracies has {len(accs)} entries, expected n_annotators = {n_annotators}")
        crowd = make_crowd(accs, seed=seed)
    truth = random_truths(n_programs, n_lines, correct_rate, seed=crowd.rng)
    k = None if per_program == n_annotators else per_program
    log = crowd.label_programs(truth, k=k)
    truth_frame = pd.DataFrame({"program_id": np.repeat(np.arange(n_programs), n_lines),
                                "line": np.tile(np.arange(n_lines), n_programs),
                                "label": truth.ravel()})
    return log, truth_frame
