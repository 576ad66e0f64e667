"""One real round of the RL loop in the browser: the loop on the tiny coder (a separate
process, store mode) waits for labels; two students in chromium, through ``crlhf classroom``
(no ``--round``), label round 1; round 2 appears on their pages by itself (no reload: a marker
set in each page at the start is still there at the end); the loop finishes its PPO steps and
its run folder shows that the two students' labels, not a simulated crowd's, were its reward.
Every request the pages make goes to the classroom server (a lab may be offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from crlhf.store import LabelStore

LONG = 180_000  # ms
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser

LOOP = """
import sys
import torch
torch.set_num_threads(1)
from crlhf import tiny
from crlhf.loop import LoopConfig, run_loop
from crlhf.ppo import PPOConfig
from crlhf.store import LabelStore
from crlhf.tasks import load_tasks

db, run_dir = sys.argv[1:3]
cfg = LoopConfig(rounds=2, prompts_per_round=2, n=2, max_new_tokens=32, crowd="store", labels_per_program=2,
                 gold_per_annotator=1, store_poll=0.3, store_timeout=300, run_dir=run_dir,
                 ppo=PPOConfig(ppo_epochs=1, learning_rate=1e-4))
result = run_loop(tiny.load(device="cpu"), load_tasks("minicode", split="train", n=6, seed=0), cfg,
                  store=LabelStore(db), progress=False)
print("loop done", result.metrics["round"].tolist(), flush=True)
"""

STATE = """() => {
  const r = document.querySelector('.crlhf-la');
  if (!r) return null;
  const next = r.querySelector('.crlhf-la-next');
  return {pid: r.getAttribute('data-program-id'), submitted: r.getAttribute('data-submitted') === 'true',
          disabled: r.classList.contains('crlhf-la-disabled'),
          title: r.querySelector('.crlhf-la-title').textContent,
          message: r.querySelector('.crlhf-la-message').textContent,
          lines: r.querySelectorAll('.crlhf-la-line:not(.crlhf-la-skip)').length,
          next: !!next && getComputedStyle(next).display !== 'none'};
}"""


class Student:
    """One student's page, driven a step at a time (two pages share this thread)."""

    def __init__(self, chromium, url, name, keys):
        self.name, self.keys = name, keys
        self.context = chromium.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(LONG)
        self.requests, self.navigations = [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("websocket", lambda ws: self.requests.append(ws.url))
        self.page.on("framenavigated", lambda f: f == self.page.main_frame and self.navigations.append(f.url))
        self.page.goto(url, timeout=LONG)
        self.page.evaluate(f"window.__crlhfSamePage = {json.dumps(name)}")
        self.navigations.clear()  # from here on, any navigation would be a reload
        self.page.locator(".crlhf-classroom-name input").fill(name)
        self.page.locator(".crlhf-classroom-start").click()
        self.page.locator(".crlhf-la").wait_for(timeout=LONG)
        self.labelled, self.seen = [], []  # programs submitted; (title, message) of each program shown
        self.waited = False  # saw "Waiting for new programs"

    def step(self) -> None:
        s = self.page.evaluate(STATE)
        if s is None:
            return
        if s["disabled"]:
            self.waited |= s["title"] == "Waiting for new programs"
            return
        if not self.seen or self.seen[-1][0] != s["pid"]:
            self.seen.append((s["pid"], s["title"], s["message"]))
        if s["submitted"]:
            if s["next"]:  # gold feedback on show
                self.page.locator(".crlhf-la-next").click()
            return
        if self.labelled and self.labelled[-1] == s["pid"]:
            return  # submitted, the next program is on its way
        self.page.locator(".crlhf-la-line:not(.crlhf-la-skip) .crlhf-la-code").first.click()
        for i in range(s["lines"]):
            self.page.keyboard.press(self.keys[i % len(self.keys)])
        self.page.keyboard.press("Enter")
        self.labelled.append(s["pid"])


def test_two_students_label_a_real_loop_round_by_round(chromium, classroom_server, shoot, tmp_path):
    LabelStore(classroom_server.db).close()  # an empty store: the loop fills it
    out = classroom_server.start("--token", "live-token", "--n-gold", "1")
    assert "0 programs (0 gold)" in out
    run_dir = tmp_path / "run"
    log = open(tmp_path / "loop.log", "w")
    loop = subprocess.Popen([sys.executable, "-c", LOOP, str(classroom_server.db), str(run_dir)], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"),
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"{classroom_server.url}/?token=live-token"
    students = []
    try:
        students = [Student(chromium, url, "alice", ["c"]), Student(chromium, url, "bob", ["c", "w"])]
        deadline = time.monotonic() + 300
        while loop.poll() is None and time.monotonic() < deadline:
            for st in students:
                st.step()
            time.sleep(0.2)
        assert loop.returncode == 0, (tmp_path / "loop.log").read_text()[-3000:]

        store = LabelStore(classroom_server.db)
        progs = store.programs()
        assert store.rounds()["round_id"].tolist() == [1, 2]
        round_of = {pid: None if pd.isna(r) else int(r)
                    for pid, r in zip(progs["program_id"], progs["round_id"], strict=True)}
        for st in students:
            assert st.page.evaluate("window.__crlhfSamePage") == st.name and st.navigations == []  # no reload
            shown = [round_of[pid] for pid, _, _ in st.seen]
            assert shown == [None, 1, 1, 1, 1, 2, 2, 2, 2], st.seen  # gold, round 1, round 2
            assert st.waited  # told to wait between the rounds ...
            first_r2 = next(seen for seen in st.seen if round_of[seen[0]] == 2)
            assert first_r2[2] == "New programs to label (round 2): here is the next one."  # ... and told of round 2
            assert all("· sample " in title and "· round " in title for _, title, _ in st.seen[1:])  # readable
            outside = [u for u in st.requests if urlparse(u).hostname not in ("127.0.0.1", None)
                       and not u.startswith(("data:", "blob:"))]
            assert outside == []

        # the run used the class's labels: its log is the store's labels of alice and bob
        run_log = pd.read_csv(run_dir / "labels.csv", dtype={"program_id": object, "annotator": object})
        assert set(run_log["annotator"]) == {"alice", "bob"}
        assert json.loads((run_dir / "config.json").read_text())["crowd"] == "store"
        metrics = pd.read_csv(run_dir / "metrics.csv")
        assert metrics["round"].tolist() == [1, 2] and metrics["kl"].notna().all()
        ordinary = progs.loc[~progs["gold"], "program_id"]
        stored = store.labels(program_ids=list(ordinary))
        key = ["program_id", "line", "annotator", "label"]
        assert (run_log[run_log["program_id"].isin(set(ordinary))][key].sort_values(key).values.tolist()
                == stored[key].sort_values(key).values.tolist())
        assert metrics["n_labels"].tolist() == [int((stored["program_id"].map(round_of) == r).sum()) for r in (1, 2)]
        programs = pd.read_csv(run_dir / "programs.csv")
        assert programs["reward"].tolist() == pytest.approx(programs["s_bayes"].tolist())  # the crowd's s = c/k
        store.close()
    except Exception:
        for st in students:
            shoot(st.page, f"live-round-{st.name}")
        raise
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait(30)
        log.close()
        for st in students:
            st.context.close()
