"""Tests of crlhf.loop (Algorithm 1): every reward source runs two rounds and writes the run
folder; the rewards of a round equal the reward source's definition, recomputed here from the
saved label log; a resumed run continues at round 3 in the same state as an uninterrupted one;
the label-store path works with a simulated crowd labelling in a background thread; bad
configs raise clear errors. Runs on the packaged tiny coder (a random GPT-2 with a tokenizer
trained here when the package lacks it), a few programs per round, one thread."""

import json
import threading

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from crlhf import aggregators, tiny  # noqa: E402
from crlhf.crowd import CrowdModel, counted_lines  # noqa: E402
from crlhf.loop import REWARD_SOURCES, Loop, LoopConfig, run_loop  # noqa: E402
from crlhf.ppo import PPOConfig  # noqa: E402
from crlhf.sandbox import check_many  # noqa: E402
from crlhf.simulate import make_crowd  # noqa: E402
from crlhf.tasks import line_truth, load_tasks  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tasks():
    return load_tasks("minicode", split="train", n=6, seed=0)


@pytest.fixture
def policy():
    return tiny.load(device="cpu")


def config(tmp_path, **kw):
    base = dict(rounds=2, prompts_per_round=2, n=2, max_new_tokens=40, crowd_size=6, labels_per_program=3,
                gold_per_annotator=2, ppo=PPOConfig(ppo_epochs=1, learning_rate=1e-4), run_dir=str(tmp_path / "run"))
    base.update(kw)
    return LoopConfig(**base)


def saved_log(run_dir, upto):
    """The label log, unit texts and gold truths of a run folder up to round ``upto``."""
    log = pd.read_csv(run_dir / "labels.csv", dtype={"program_id": object, "annotator": object})
    log = log[log["round"] <= upto]
    units = [json.loads(x) for x in (run_dir / "units.jsonl").read_text().splitlines()]
    texts = {u["unit"]: u["program"] for u in units}
    gold = {u["unit"]: np.asarray(u["truth"]) for u in units if u["truth"] is not None}
    return log, texts, gold


def generated(text, task):
    """The lines a reward counts: non-blank, non-comment lines after the prompt's own."""
    mask = counted_lines(text)
    assert text.startswith(task.prompt)
    mask[:task.prompt.count("\n")] = False
    return mask


def share(correct, mask):
    return float(np.asarray(correct, dtype=bool)[mask].sum() / mask.sum()) if mask.any() else 0.0


def share_correct(agg, pid, text, task):
    good = set(agg.loc[(agg["program_id"] == pid) & (agg["label"] == 1), "line"].tolist())
    return share([i in good for i in range(len(text.splitlines()))], generated(text, task))


@pytest.mark.parametrize("reward", REWARD_SOURCES)
def test_each_reward_source_runs_writes_the_folder_and_rewards_match_the_definition(policy, tasks, tmp_path,
                                                                                   reward):
    cfg = config(tmp_path, reward=reward)
    result = run_loop(policy, tasks, cfg, progress=False)
    d = tmp_path / "run"
    for name in ("config.json", "state.json", "metrics.csv", "programs.csv", "reliabilities.csv", "labels.csv",
                 "units.jsonl", "annotators.json", "checkpoints/round-002/value_head.safetensors",
                 "checkpoints/round-002/reference/config.json"):
        assert (d / name).exists(), name
    assert LoopConfig.load(d).reward == reward
    metrics = pd.read_csv(d / "metrics.csv")
    assert metrics["round"].tolist() == [1, 2]
    for col in ("reward_mean", "kl", "beta", "pass_rate", "mean_p", "time"):
        assert np.isfinite(metrics[col]).all(), col
    rel = pd.read_csv(d / "reliabilities.csv")
    assert {"round", "step", "annotator", "reliability"} <= set(rel.columns)
    assert set(rel["round"]) == {0, 1, 2}  # calibration, then the two rounds
    assert len(result.crowd_model.annotators) == 6

    programs = pd.read_csv(d / "programs.csv", dtype={"program_id": object, "task_id": object})
    assert len(programs) == 2 * 2 * 2
    rnd = programs[programs["round"] == 2]
    assert metrics.loc[1, "reward_mean"] == pytest.approx(rnd["reward"].mean())
    log, texts, gold = saved_log(d, 2)
    frame = log[log["program_id"].isin(set(rnd["program_id"]))][["program_id", "line", "annotator", "label"]]
    got = dict(zip(rnd["program_id"], rnd["reward"], strict=True))
    by_id = {t.task_id: t for t in tasks}
    task_of = dict(zip(rnd["program_id"], (by_id[t] for t in rnd["task_id"]), strict=True))
    if reward == "bayes":  # s of eq (7) with the reliabilities as they stood: replay the log
        model = CrowdModel().add_annotators(json.loads((d / "annotators.json").read_text()))
        lines = model.replay(log[["program_id", "line", "annotator", "label", "order"]], gold=gold,
                             programs=texts).lines
        want = {p: share(lines.loc[lines["program_id"] == p, "posterior"].to_numpy() > 0.5,
                         generated(texts[p], task_of[p])) for p in got}
    elif reward in ("majority", "single", "dawid_skene"):
        if reward == "majority":
            agg = aggregators.majority_vote(frame)
        elif reward == "single":
            agg = aggregators.single_annotator(frame, seed=cfg.seed * 100003 + 2)
        else:
            truth = pd.concat([pd.DataFrame({"program_id": u, "line": np.arange(len(t)), "label": t})
                               for u, t in gold.items()])
            agg = aggregators.dawid_skene(log[["program_id", "line", "annotator", "label"]], gold=truth)
        want = {p: share_correct(agg, p, texts[p], task_of[p]) for p in got}
    else:
        items = [by_id[t].item_for_program(texts[p]) for p, t in zip(rnd["program_id"], rnd["task_id"], strict=True)]
        passed = [r.passed for r in check_many(items, progress=False)]
        if reward == "tests":
            want = {p: float(ok) for p, ok in zip(rnd["program_id"], passed, strict=True)}
        else:
            want = {}
            for (p, t), ok in zip(zip(rnd["program_id"], rnd["task_id"], strict=True), passed, strict=True):
                truth = np.asarray(line_truth(texts[p], by_id[t], passed=ok))
                want[p] = share(truth == 1, generated(texts[p], by_id[t]))
    assert got == pytest.approx(want)


@pytest.mark.parametrize("shape,credit", [("product", "blame"), ("all_correct", "line_end")])
def test_reward_shape_and_credit(policy, tasks, tmp_path, shape, credit, monkeypatch):
    """The round's rewards are the shape's (replayed from the log), and PPO receives the credit's
    per-token rewards or advantage weights, one per response token, summing to the score."""
    from crlhf import reward as R
    from crlhf.ppo import PPOTrainer

    seen = {}
    step = PPOTrainer.step_completions

    def record(self, completions, scores, **kw):
        seen.update(kw, scores=list(scores), lengths=[len(c.token_ids) for c in completions])
        return step(self, completions, scores, **kw)

    monkeypatch.setattr(PPOTrainer, "step_completions", record)
    cfg = config(tmp_path, rounds=1, reward_shape=shape, credit=credit)
    run_loop(policy, tasks, cfg, progress=False)
    d = tmp_path / "run"
    assert LoopConfig.load(d).reward_shape == shape and LoopConfig.load(d).credit == credit
    programs = pd.read_csv(d / "programs.csv", dtype={"program_id": object, "task_id": object})
    log, texts, gold = saved_log(d, 1)
    model = CrowdModel().add_annotators(json.loads((d / "annotators.json").read_text()))
    lines = model.replay(log[["program_id", "line", "annotator", "label", "order"]], gold=gold, programs=texts).lines
    by_id = {t.task_id: t for t in tasks}
    for p, tid, got in zip(programs["program_id"], programs["task_id"], programs["reward"], strict=True):
        post = lines.loc[lines["program_id"] == p, "posterior"].to_numpy()
        assert got == pytest.approx(R.score(post, generated(texts[p], by_id[tid]), shape))
    if credit == "blame":
        assert seen["token_rewards"] is None and len(seen["advantage_weights"]) == len(programs)
        assert [len(w) for w in seen["advantage_weights"]] == seen["lengths"]
        assert all(set(np.unique(w)) <= {0.0, 1.0} for w in seen["advantage_weights"])
    else:
        assert seen["advantage_weights"] is None and [len(u) for u in seen["token_rewards"]] == seen["lengths"]
        # the baseline is 'none': each program's return (dense + last token) is its score
        totals = [float(np.sum(u)) + s for u, s in zip(seen["token_rewards"], seen["scores"], strict=True)]
        assert totals == pytest.approx(programs["reward"].tolist())
    with pytest.raises(ValueError,
                       match=r"LoopConfig.reward_shape must be one of \('share', 'all_correct', 'product'\)"):
        LoopConfig(reward_shape="mean")
    with pytest.raises(ValueError, match="LoopConfig.credit must be one of"):
        LoopConfig(credit="token")


def test_resume_continues_at_round_3_in_the_same_state(policy, tasks, tmp_path):
    def fresh():
        return tiny.load(device="cpu")

    straight = run_loop(fresh(), tasks, config(tmp_path / "a", rounds=3), progress=False)

    first = run_loop(policy, tasks, config(tmp_path / "b", rounds=2), progress=False)
    loop = Loop(fresh(), tasks, config(tmp_path / "b", rounds=3), progress=False)
    assert loop._resume() and loop.round == 2
    pd.testing.assert_series_equal(loop.model.reliabilities, first.crowd_model.reliabilities)
    pd.testing.assert_frame_equal(loop.model.history, first.crowd_model.history)
    assert loop.trainer.kl_ctl.value == first.trainer.kl_ctl.value
    assert loop.trainer.steps == first.trainer.steps == 2
    for a, b in zip(loop.trainer.model.parameters(), first.trainer.model.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(loop.trainer.ref_model.parameters(), first.trainer.ref_model.parameters(), strict=True):
        assert torch.equal(a, b)

    resumed = run_loop(fresh(), tasks, config(tmp_path / "b", rounds=3), progress=False)
    assert resumed.start_round == 3
    assert resumed.metrics["round"].tolist() == [1, 2, 3]
    pd.testing.assert_frame_equal(resumed.metrics.iloc[:2], first.metrics, check_dtype=False)
    # round 3 sees the same policy, crowd model and label stream as an uninterrupted run
    for col in ("reward_mean", "kl", "beta", "pass_rate", "n_labels"):
        assert resumed.metrics.loc[2, col] == pytest.approx(straight.metrics.loc[2, col], rel=1e-5), col
    pd.testing.assert_series_equal(resumed.crowd_model.reliabilities, straight.crowd_model.reliabilities)
    assert json.loads((tmp_path / "b" / "run" / "state.json").read_text())["round"] == 3
    assert not (tmp_path / "b" / "run" / "checkpoints" / "round-001").exists()  # keep_checkpoints=2


def _label_in_background(url, names, stop, accuracy=0.8):
    """Simulated humans: each annotator labels every program in the store (gold ones from
    their truth), until ``stop`` is set."""
    from crlhf.store import LabelStore

    store = LabelStore(url)
    tokens = store.register_annotators(names)
    rng = np.random.default_rng(0)
    done = set()
    while not stop.is_set():
        progs = store.programs(text=True)
        for pid, text, is_gold in zip(progs["program_id"], progs["program"], progs["gold"], strict=True):
            if pid in done:
                continue
            n = len(text.splitlines())
            truth = store.gold_truth(pid) if is_gold else np.ones(n, dtype=int)
            for a in names:
                right = rng.random(n) < accuracy
                labels = np.where(right, truth, -np.asarray(truth))
                store.add_labels(tokens[a], [(pid, i, int(v)) for i, v in enumerate(labels)])
            done.add(pid)
        stop.wait(0.05)
    store.close()


def test_store_path_waits_for_labels_written_by_another_thread(policy, tasks, tmp_path):
    from crlhf.store import LabelStore

    url = f"sqlite:///{tmp_path / 'labels.db'}"
    store = LabelStore(url)
    stop = threading.Event()
    names = ["ann-a", "ann-b", "ann-c"]
    worker = threading.Thread(target=_label_in_background, args=(url, names, stop), daemon=True)
    worker.start()
    try:
        cfg = config(tmp_path, crowd="store", store_poll=0.05, store_timeout=60)
        result = run_loop(policy, tasks, cfg, store=store, progress=False)
    finally:
        stop.set()
        worker.join(10)
    assert result.metrics["round"].tolist() == [1, 2]
    assert sorted(result.crowd_model.annotators) == names
    assert len(store.rounds()) == 2
    assert len(store.programs(gold=True)) == 2
    log, texts, gold = saved_log(tmp_path / "run", 2)
    assert set(log.loc[log["program_id"].isin(set(gold)), "annotator"]) == set(names)  # gold calibrated all
    programs = result.programs
    assert (log[log["program_id"].isin(set(programs["program_id"]))].groupby("program_id")["annotator"]
            .nunique() == 3).all()
    assert programs["reward"].tolist() == pytest.approx(programs["s_bayes"].tolist())
    # the exported dataset pays each program what the loop paid it (one reward, crlhf/reward.py)
    data = store.dataset().set_index("program_id")
    assert data.loc[programs["program_id"], "score"].tolist() == pytest.approx(programs["reward"].tolist())
    # the crowd model replays from the run folder to the same state
    loop = Loop(policy, tasks, cfg, store=store, progress=False)
    assert loop._resume()
    pd.testing.assert_series_equal(loop.model.reliabilities, result.crowd_model.reliabilities)


def test_store_without_annotators_times_out(policy, tasks, tmp_path):
    from crlhf.store import LabelStore

    store = LabelStore(f"sqlite:///{tmp_path / 'empty.db'}")
    cfg = config(tmp_path, rounds=1, crowd="store", store_poll=0.05, store_timeout=0.3, gold_per_annotator=0)
    with pytest.raises(TimeoutError, match="fewer than 3 annotators"):
        run_loop(policy, tasks, cfg, store=store, progress=False)


@pytest.mark.parametrize("kw, match", [
    (dict(reward="reward_model"), "LoopConfig.reward must be one of"),
    (dict(crowd="mturk"), "LoopConfig.crowd must be one of"),
    (dict(n=0), "LoopConfig.n must be an int >= 1"),
    (dict(rounds=1.5), "LoopConfig.rounds must be an int"),
    (dict(temperature=0), "LoopConfig.temperature must be a number > 0"),
    (dict(crowd_model={"bogus": 1}), "LoopConfig.crowd_model"),
    (dict(crowd_model={"nu": 2.0}), "nu must lie in"),
    (dict(crowd="store", labels_per_program=None), "labels_per_program must be an int"),
    (dict(ppo={"bogus": 1}), "unknown PPOConfig fields"),
])
def test_bad_config_raises_a_clear_error(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LoopConfig(**kw)


def test_bad_arguments_raise_clear_errors(policy, tasks, tmp_path):
    with pytest.raises(ValueError, match="needs a store= argument"):
        Loop(policy, tasks, LoopConfig(crowd="store"))
    with pytest.raises(ValueError, match="exceeds the crowd's 2 annotators"):
        Loop(policy, tasks, LoopConfig(labels_per_program=3), crowd=make_crowd([0.8, 0.9]))
    with pytest.raises(ValueError, match="tasks is empty"):
        Loop(policy, [], LoopConfig())
    with pytest.raises(TypeError, match="policy must be"):
        Loop(object(), tasks, LoopConfig())
    run_loop(policy, tasks, config(tmp_path, rounds=0), progress=False)  # calibration only
    with pytest.raises(ValueError, match=r"fields differ: \['reward'\]"):
        run_loop(policy, tasks, config(tmp_path, rounds=1, reward="oracle"), progress=False)
    assert (tmp_path / "run" / "state.json").is_file()
    assert run_loop(policy, tasks, config(tmp_path, rounds=1), progress=False).start_round == 1


def test_rewards_count_only_generated_lines_and_an_empty_completion_scores_zero(tasks):
    from crlhf.reward import scored_lines
    from crlhf.reward_inputs import check_programs

    t = tasks[0]
    program = t.program(t.reference)
    mask = scored_lines(program, t)
    n_prompt = t.prompt.count("\n")
    assert not mask[:n_prompt].any() and mask[n_prompt:].sum() == len(t.reference.strip().splitlines())
    good, empty, wrong = check_programs([t, t, t], [t.reference, "", "    return None\n"])
    assert good.passed and good.s_true == 1.0
    assert not empty.passed and empty.s_true == 0.0  # not the prompt lines' 1.0
    assert not wrong.passed and wrong.s_true == 0.0


def test_demo_trains_on_test_split_prompts_disjoint_from_the_evaluated_ones():
    from crlhf.demo import rl_tasks

    test, train = rl_tasks(30, 40)
    assert len(test) == 30 and len(train) == 40
    assert not {t.prompt for t in test} & {t.prompt for t in train}
    assert len({t.prompt for t in train}) == 40
    assert all(t.metadata["split"] == "test" for t in train)


def test_prompt_baseline_subtracts_the_mean_of_the_other_programs_of_the_prompt():
    from crlhf.reward import prompt_centred

    got = prompt_centred([1.0, 0.5, 0.0, 0.8, 0.8, 0.2], ["a", "a", "a", "b", "b", "c"])
    assert got == pytest.approx([1.0 - 0.25, 0.5 - 0.5, 0.0 - 0.75, 0.0, 0.0, 0.2])
    # a failing program on an easy prompt no longer looks good: it is below its siblings
    easy = prompt_centred([1.0, 1.0, 0.8], [0, 0, 0])
    assert easy[2] < 0 < easy[0]
    with pytest.raises(ValueError, match="baseline"):
        LoopConfig(baseline="batch")
    with pytest.raises(ValueError, match="n >= 2"):
        LoopConfig(baseline="prompt", n=1)
