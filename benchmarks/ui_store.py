"""Label store and notebook UI speed: label write latency, sustained labels/s with 30 writer
processes, store reads at 30 annotators x 1,000 programs, on SQLite and PostgreSQL.

    python benchmarks/ui_store.py [--json PATH] [--quick] [--postgres URL | --no-postgres]

Protocol (``--quick`` shortens every run):
- Each backend gets a fresh store of 1,000 programs x 10 lines and 30 registered annotators:
  a SQLite file in a temporary folder (WAL, ``synchronous=NORMAL``, the default; one row with
  ``FULL``), and PostgreSQL at ``--postgres URL`` / ``$CRLHF_TEST_POSTGRES_URL``, else a
  throwaway local cluster with default durability (fsync on; Unix socket) when the Debian
  binaries exist, else PostgreSQL is skipped with the reason printed.
- Write latency, kernel side: this process calls ``store.add_labels`` (one program's 10 labels,
  as a submit) and ``store.add_label`` (one label) 300 times each on an idle store; p50/p99
  of the wall time of the call, which returns after the commit.
- Sustained labels/s: 30 writer processes (forked, each its own store object and token), all
  released at once, each writing for 5 s: batches of 10 labels (a program submit) or of 1
  label (a transaction per click). labels/s = acknowledged labels / wall time from the start
  to the last writer's end. The p50/p99 call latency under that load is from the writers.
  Afterwards the log must hold exactly the acknowledged labels and pass ``check_integrity``.
- Store reads behind a dashboard at 30 x 1,000: a simulated noisy crowd of 30 labels 1,000
  programs x 10 lines, 10 annotators each (100k labels); best of 3 of ``labels()`` (latest),
  ``labels(since=...)`` after 100 new labels, ``counts()`` and ``replay()`` (the whole crowd
  model). These are the store's share of a refresh, not the widget's refresh.
- Dashboard refresh: see ``dashboard_refresh`` below (added with the widgets).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid

import numpy as np

from _common import best_of, print_table, write_json
from crlhf.simulate import noisy_crowd, random_truths
from crlhf.store import LabelStore
from crlhf.testing import TemporaryPostgres, find_postgres_bindir

N_PROGRAMS, N_LINES, N_WRITERS = 1000, 10, 30
PROGRAM = "\n".join(f"x{i} = f({i})" for i in range(N_LINES))


def _percentiles(seconds) -> tuple[float, float]:
    ms = 1000 * np.asarray(seconds, dtype=float)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _fresh_store(where: dict) -> tuple[LabelStore, dict]:
    store = LabelStore(**where)
    store.add_tasks([{"task_id": "bench", "prompt": "# bench\n"}])
    store.add_programs([{"program": PROGRAM, "program_id": f"p{k}", "task_id": "bench"} for k in range(N_PROGRAMS)])
    tokens = store.register_annotators([f"a{i:02d}" for i in range(N_WRITERS)])
    return store, tokens


def _slots(writer: int, start: int, n: int, tag: str):
    """Labels ``start .. start+n-1`` of a writer: its own walk over all program lines."""
    out = []
    for j in range(start, start + n):
        k = (j + writer * 331) % (N_PROGRAMS * N_LINES)
        out.append((f"p{k // N_LINES}", k % N_LINES, 1 if (j * 7 + writer) % 3 else -1, f"{tag}-{writer}-{j}"))
    return out


# ----------------------------------------------------------------------------- latency
def write_latency(store: LabelStore, token: str, repeat: int) -> dict:
    """Kernel-side wall time of a committed write on an otherwise idle store."""
    tag = uuid.uuid4().hex[:6]
    for j in range(5):  # warm up: compiled statements, pooled connection
        store.add_labels(token, _slots(0, 10 * j, 10, tag + "w"))
    submit, single = [], []
    for j in range(repeat):
        rows = _slots(0, 10 * j, 10, tag + "s")
        t = time.perf_counter()
        store.add_labels(token, rows)
        submit.append(time.perf_counter() - t)
        pid, line, label, cid = _slots(0, j, 1, tag + "1")[0]
        t = time.perf_counter()
        store.add_label(token, pid, line, label, cid)
        single.append(time.perf_counter() - t)
    return {"submit_10": _percentiles(submit), "single_label": _percentiles(single)}


# ----------------------------------------------------------------------------- throughput
def _writer(where, token, writer, batch, duration, tag, go, out):
    store = LabelStore(**where)
    store.add_labels(token, [])  # connect before the start
    go.wait(120)
    start = time.monotonic()
    end, lat, n, j = start + duration, [], 0, 0
    while time.monotonic() < end:
        rows = _slots(writer, j, batch, tag)
        t = time.perf_counter()
        store.add_labels(token, rows)
        lat.append(time.perf_counter() - t)
        n, j = n + len(rows), j + batch
    out.put((writer, n, time.monotonic(), lat))


def sustained(where: dict, tokens: dict, batch: int, duration: float, check: LabelStore) -> dict:
    """Labels/s of 30 writer processes writing at once for ``duration`` seconds."""
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    tag = f"t{batch}-{uuid.uuid4().hex[:6]}"
    before = len(check.labels(latest=False))
    check.close()  # no pooled connection crosses the fork
    procs = [ctx.Process(target=_writer, args=(where, tokens[name], i, batch, duration, tag, go, out))
             for i, name in enumerate(sorted(tokens))]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every writer open its store
    t0 = time.monotonic()
    go.set()
    results = [out.get(timeout=duration + 300) for _ in procs]
    for p in procs:
        p.join(60)
        if p.exitcode != 0:
            raise RuntimeError(f"a writer failed (exit code {p.exitcode})")
    wall = max(r[2] for r in results) - t0
    acked = sum(r[1] for r in results)
    stored = len(check.labels(latest=False)) - before
    problems = check.check_integrity()
    if stored != acked or problems:
        raise RuntimeError(f"{acked} labels acknowledged, {stored} stored; integrity: {problems}")
    p50, p99 = _percentiles(np.concatenate([r[3] for r in results]))
    return {"labels_per_s": acked / wall, "labels": acked, "wall_s": wall, "p50_ms": p50, "p99_ms": p99}


# ----------------------------------------------------------------------------- reads at 30 x 1000
def dashboard_reads(where: dict, repeat: int) -> dict:
    """The store's share of a dashboard refresh at 30 annotators x 1,000 programs."""
    store, tokens = _fresh_store(where)
    crowd = noisy_crowd(N_WRITERS, seed=0)
    log = crowd.label_programs(random_truths(N_PROGRAMS, N_LINES, seed=1), k=10)
    log["program_id"] = "p" + log["program_id"].astype(str)
    names = sorted(tokens)
    log["annotator"] = [names[i] for i in log["annotator"].map({a: i for i, a in enumerate(crowd.names)})]
    t = time.perf_counter()
    for who, rows in log.groupby("annotator", sort=False):
        store.add_labels(tokens[who], rows[["program_id", "line", "label"]])
    fill_s = time.perf_counter() - t
    mark = int(store.labels()["order"].max())
    store.add_labels(tokens[names[0]], _slots(0, 0, 100, "since"))
    out = {"labels": len(log), "fill_labels_per_s": len(log) / fill_s}
    out["labels_latest_s"], frame = best_of(store.labels, repeat)
    out["labels_since_s"], new = best_of(lambda: store.labels(since=mark), repeat)
    out["counts_s"], _ = best_of(store.counts, repeat)
    out["replay_s"], _ = best_of(store.replay, repeat)
    assert len(new) == 100 and len(frame) >= len(log), (len(new), len(frame))
    store.close()
    return out


# ----------------------------------------------------------------------------- dashboard refresh
def dashboard_refresh(where: dict, rounds: int = 5) -> dict | None:
    """Time of one ``CrowdDashboard`` refresh at 30 annotators x 1,000 programs (target < 1 s).

    A fresh SQLite store beside ``where`` is filled as in :func:`dashboard_reads` (100k labels).
    ``cold_s``: the first refresh (reads the whole log; the first matplotlib import is not in
    it). Then ``rounds`` times: 100 new labels (ten submits of 10 by ten annotators), one
    refresh, timed: a read since the last refresh, a replay of the whole log into a fresh
    ``CrowdModel``, the leaderboard and the heat map; ``refresh_s`` is their median,
    ``refresh_max_s`` the slowest. ``refresh_with_plot_*``: the same with the p_i tab on show,
    so that the p_i plot (matplotlib, a PNG) is redrawn too. ``idle_s``: a refresh with nothing
    new. Returns ``None`` when the widgets cannot be imported.
    """
    try:
        import matplotlib.pyplot  # noqa: F401  (imported once per process, not per refresh)

        from widgets.dashboard import CrowdDashboard
    except ImportError as exc:
        print(f"dashboard refresh not measured: {exc}")
        return None
    folder = os.path.dirname(where["url"]) if "://" not in where["url"] else tempfile.gettempdir()
    path = os.path.join(folder, f"dashboard-{uuid.uuid4().hex[:6]}.db")
    store, tokens = _fresh_store({"url": path})
    crowd = noisy_crowd(N_WRITERS, seed=0)
    log = crowd.label_programs(random_truths(N_PROGRAMS, N_LINES, seed=1), k=10)
    log["program_id"] = "p" + log["program_id"].astype(str)
    names = sorted(tokens)
    log["annotator"] = [names[i] for i in log["annotator"].map({a: i for i, a in enumerate(crowd.names)})]
    for who, rows in log.groupby("annotator", sort=False):
        store.add_labels(tokens[who], rows[["program_id", "line", "label"]])
    start = time.perf_counter()
    dash = CrowdDashboard(store, autostart=False)
    cold = time.perf_counter() - start
    out = {"cold_s": cold, "target_s": 1.0}
    for tab, key in ((0, "refresh"), (1, "refresh_with_plot")):
        dash.tabs.selected_index = tab
        times = []
        for r in range(rounds):
            for i in range(10):
                store.add_labels(tokens[names[i]], _slots(i, 1000 * (r + rounds * tab), 10, f"dash{tab}-{r}"))
            start = time.perf_counter()
            changed = dash.refresh()
            times.append(time.perf_counter() - start)
            assert changed
        out.update({f"{key}_s": float(np.median(times)), f"{key}_max_s": max(times), f"{key}_all_s": times})
    start = time.perf_counter()
    assert not dash.refresh()
    out["idle_s"] = time.perf_counter() - start
    out["labels"] = len(dash._log)
    dash.close()
    store.close()
    return out


# ----------------------------------------------------------------------------- main
def _postgres(args):
    """(where, server, reason): a PostgreSQL location for the runs, or why there is none."""
    if args.no_postgres:
        return None, None, "--no-postgres"
    url = args.postgres or os.environ.get("CRLHF_TEST_POSTGRES_URL")
    if url:
        return {"url": url}, None, None
    if find_postgres_bindir() is None:
        return None, None, "no PostgreSQL binaries (apt-get install postgresql) and no --postgres URL"
    server = TemporaryPostgres(durable=True)
    return {"url": server.start()}, server, None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="shorter runs (for CI)")
    parser.add_argument("--postgres", help="SQLAlchemy URL of a PostgreSQL server to use")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    repeat, duration = (100, 2.0) if args.quick else (300, 5.0)

    tmp = tempfile.TemporaryDirectory(prefix="crlhf-bench-")
    pg_where, server, reason = _postgres(args)
    backends = [("sqlite", {"url": os.path.join(tmp.name, "labels.db")}),
                ("sqlite FULL", {"url": os.path.join(tmp.name, "full.db"), "sqlite_synchronous": "FULL"})]
    if pg_where is not None:
        backends.append(("postgresql", pg_where))
    else:
        print(f"PostgreSQL skipped: {reason}")
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
               "postgres_skipped": reason, "backends": {}}
    lat_rows, tput_rows, read_rows = [], [], []
    try:
        for name, where in backends:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            w = dict(where, schema=schema) if name == "postgresql" else where
            store, tokens = _fresh_store(w)
            res = {"latency_ms": write_latency(store, tokens["a00"], repeat)}
            lat_rows.append([name, *res["latency_ms"]["submit_10"], *res["latency_ms"]["single_label"]])
            batches = (10,) if name == "sqlite FULL" else (10, 1)
            for batch in batches:
                r = sustained(w, tokens, batch, duration, store)
                res[f"sustained_batch{batch}"] = r
                tput_rows.append([name, batch, N_WRITERS, r["labels_per_s"], r["p50_ms"], r["p99_ms"]])
            store.close()
            if name != "sqlite FULL":
                rw = dict(where, schema=schema + "_r") if name == "postgresql" else {
                    "url": os.path.join(tmp.name, "reads.db")}
                res["reads_30x1000"] = r = dashboard_reads(rw, 3)
                read_rows.append([name, r["labels"], r["labels_latest_s"], r["labels_since_s"], r["counts_s"],
                                  r["replay_s"]])
            results["backends"][name] = res
        refresh = dashboard_refresh(backends[0][1])
        results["dashboard_refresh"] = refresh
    finally:
        if server is not None:
            server.stop()
        tmp.cleanup()

    print_table("Label write latency, kernel side, idle store (ms; returns after commit)",
                ["backend", "submit 10 p50", "submit 10 p99", "1 label p50", "1 label p99"], lat_rows, 2)
    print_table(f"Sustained writes: {N_WRITERS} writer processes for {duration:g} s (target >= 1,000 labels/s "
                "on SQLite)", ["backend", "labels/tx", "writers", "labels/s", "call p50 ms", "call p99 ms"],
                tput_rows, 1)
    print_table(f"Store reads at {N_WRITERS} annotators x {N_PROGRAMS} programs x {N_LINES} lines, 10 "
                "annotators per program (s, best of 3)",
                ["backend", "labels", "labels()", "labels(since)", "counts()", "replay()"], read_rows, 3)
    d = results["dashboard_refresh"]
    if d is None:
        print("\nDashboard refresh at 30 x 1,000: not measured (the widgets could not be imported)")
    else:
        print_table(f"CrowdDashboard refresh at {N_WRITERS} annotators x {N_PROGRAMS} programs "
                    f"({d['labels']:,} labels; "
                    "SQLite; target < 1 s; s, 5 refreshes after 100 new labels each)",
                    ["view", "first (cold)", "median", "slowest", "nothing new"],
                    [["posteriors + leaderboard", d["cold_s"], d["refresh_s"], d["refresh_max_s"], d["idle_s"]],
                     ["... + p_i plot on show", None, d["refresh_with_plot_s"], d["refresh_with_plot_max_s"], None]], 3)
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
