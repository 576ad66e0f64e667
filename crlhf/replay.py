"""Replaying a label log into a crowd model: :func:`replay_log`, the one replay path of the kit
(the store's replay and exports, the loop's resume), its incremental form
:class:`IncrementalReplay` for a log that grows (the dashboard), and :func:`labels_frame`, a
dense label matrix as a log. The model and its program-by-program update are
:class:`crlhf.crowd.CrowdModel`'s (:meth:`crlhf.crowd.CrowdModel.replay`); this module feeds it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .crowd import LOG_COLUMNS, CrowdModel, ReplayResult, _gold_mapping, _latest_labels

__all__ = ["replay_log", "IncrementalReplay", "labels_frame"]


def _check_model(model, model_kwargs) -> CrowdModel:
    if model is None:
        return CrowdModel(**model_kwargs)
    if model_kwargs:
        raise TypeError("pass either model or CrowdModel keyword arguments, not both")
    if not isinstance(model, CrowdModel):
        raise TypeError(f"model must be a crlhf.crowd.CrowdModel, got {type(model).__name__} (field 'model')")
    return model


def replay_log(log: pd.DataFrame, *, annotators: Iterable[Hashable] | None = None, gold=None,
               programs: Mapping | None = None, model: CrowdModel | None = None, **model_kwargs
               ) -> tuple[CrowdModel, ReplayResult]:
    """Replay a label log into a crowd model (Algorithm 1, lines 10-23, program by program; gold
    programs calibrate with their truth): the one replay path of the kit, called by
    ``LabelStore.replay``, the loop's resume and (through :class:`IncrementalReplay`) the dashboard.

    ``annotators`` are registered first, in the order given (annotators of the log that are not
    among them follow in order of their first label); then :meth:`crlhf.crowd.CrowdModel.replay` with
    ``gold`` (``None`` or empty: no gold) and ``programs``. ``model``: a ``CrowdModel`` to update
    in place, or ``None`` for ``CrowdModel(**model_kwargs)``. Returns ``(model, result)``.
    """
    model = _check_model(model, model_kwargs)
    if annotators is not None:
        model.add_annotators(list(annotators))
    if gold is not None and len(gold) == 0:
        gold = None
    return model, model.replay(log, gold=gold, programs=programs)


class IncrementalReplay:
    """:func:`replay_log` for a log that grows (the dashboard): :meth:`update` takes the labels
    written since the last call and returns the same model state and result as a full
    :func:`replay_log` of the whole log, replaying only from the first program whose labels
    (or gold truth, or text) changed.

    The model's state is kept before every ``every``-th program; an update restores the last
    one at or before the first changed program and replays from there, so appending labels to
    the newest programs costs about ``every`` programs, not the whole log. A change in the
    annotators (a new one registered or labelling) replays everything. ``model_kwargs`` go to
    ``CrowdModel``. ``n_replayed``: programs replayed by the last update.
    """

    def __init__(self, *, every: int = 16, **model_kwargs):
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r} (field 'every')")
        CrowdModel(**model_kwargs)  # bad parameters fail here, with the model's message
        self.every, self.model_kwargs = int(every), dict(model_kwargs)
        self.model: CrowdModel | None = None
        self.result: ReplayResult | None = None
        self.n_replayed = 0
        self._log: pd.DataFrame | None = None
        self._pids: list = []
        self._gold: dict = {}
        self._texts: dict = {}
        self._line_starts = np.zeros(1, dtype=np.int64)
        self._snapshots: dict = {}

    @property
    def log(self) -> pd.DataFrame | None:
        """Every label given so far (as given, not reduced to the latest)."""
        return self._log

    def update(self, new: pd.DataFrame, *, annotators: Iterable[Hashable] | None = None, gold=None,
               programs: Mapping | None = None) -> tuple[CrowdModel, ReplayResult]:
        """Add the labels ``new`` (columns ``program_id, line, annotator, label`` and optionally
        ``order``) to the log and bring the model up to date; ``annotators``, ``gold`` and
        ``programs`` as in :func:`replay_log`, for the whole log. Returns ``(model, result)``."""
        if not isinstance(new, pd.DataFrame):
            raise TypeError(f"new must be a DataFrame with columns {LOG_COLUMNS} (field 'new')")
        cols = [*LOG_COLUMNS, *(["order"] if "order" in new.columns else [])]
        _latest_labels(new)  # bad rows fail here, before the log takes them
        new = new.loc[:, cols]
        log = new if self._log is None or not len(self._log) else pd.concat([self._log, new], ignore_index=True)
        frame = _latest_labels(log)
        gold_map = _gold_mapping(gold if gold is not None and len(gold) else None)
        registered = list(dict.fromkeys(annotators)) if annotators is not None else []
        expected = list(dict.fromkeys([*registered, *pd.unique(frame["annotator"])]))
        prog_codes, pids = pd.factorize(frame["program_id"], sort=False)
        pids = list(pids)

        start = 0
        if self.model is not None and self.model.annotators == expected:
            touched = set(new["program_id"])
            cut = 0
            for old, pid in zip(self._pids, pids, strict=False):
                if (old != pid or pid in touched or not _same_truth(self._gold.get(pid), gold_map.get(pid))
                        or (programs.get(pid) if programs is not None else None) != self._texts.get(pid)):
                    break
                cut += 1
            start = max(p for p in self._snapshots if p <= cut)
        if start == 0:
            model = CrowdModel(**self.model_kwargs)
            model.add_annotators(registered)
            self._snapshots = {}
            prefix = None
        else:
            assert self.model is not None  # a snapshot exists, so a model made it
            model = self.model
            model._restore(self._snapshots[start])
            self._snapshots = {p: s for p, s in self._snapshots.items() if p <= start}
            prefix = self.result
        sub = frame[prog_codes >= start] if start else frame
        res, snaps = model._replay_frame(sub, gold_map, programs, keep_every=self.every, offset=start)
        self._snapshots.update(snaps)
        if not self._snapshots:
            self._snapshots[0] = model._state()  # an empty log: start from the registered crowd
        if prefix is not None:
            n_prefix_lines = int(self._line_starts[start])
            res = ReplayResult(pd.concat([prefix.lines.iloc[:n_prefix_lines], res.lines], ignore_index=True),
                               pd.concat([prefix.scores.iloc[:start], res.scores], ignore_index=True))
        counts = res.lines.groupby("program_id", sort=False).size().reindex(pids).to_numpy() if pids else []
        self._line_starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self.n_replayed = len(pids) - start
        self.model, self.result, self._log, self._pids = model, res, log, pids
        self._gold = gold_map
        self._texts = {pid: programs[pid] for pid in pids if pid in programs} if programs is not None else {}
        return model, res


def _same_truth(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return len(a) == len(b) and bool(np.array_equal(a, b))


def labels_frame(labels: Sequence[Sequence[int]] | np.ndarray, annotators: Sequence[Hashable],
                 program_id: Hashable = None) -> pd.DataFrame:
    """A dense ``(n_lines, n_annotators)`` label matrix (0 = not labelled) as a label frame."""
    arr = np.asarray(labels)
    if arr.ndim != 2 or arr.shape[1] != len(annotators):
        raise ValueError(f"labels must have shape (n_lines, {len(annotators)}), got {arr.shape}")
    line, col = np.nonzero(arr)
    names = np.empty(len(annotators), dtype=object)
    names[:] = list(annotators)
    return pd.DataFrame({"program_id": program_id, "line": line, "annotator": names[col],
                         "label": arr[line, col].astype(np.int64)})
