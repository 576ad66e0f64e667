"""Tests of crlhf.trl_rewards: CrowdReward's scores equal a CrowdModel computed by hand from
the same crowd labels (the reference scores above a wrong completion); tasks are found by
task_id or by prompt; TRL's GRPOTrainer runs two steps on the packaged tiny coder with it."""

import math
import os

import numpy as np
import pytest

from crlhf.crowd import CrowdModel, counted_lines
from crlhf.sandbox import check_many
from crlhf.simulate import paper_crowd
from crlhf.tasks import line_truth, load_tasks
from crlhf.trl_rewards import CrowdReward, trl_dataset

WRONG = "    return None\n"


@pytest.fixture(scope="module")
def tasks():
    return load_tasks("minicode", split="train", n=4, seed=0)


def test_scores_match_a_direct_crowd_model(tasks):
    t = tasks[0]
    comps = [t.reference, WRONG, t.reference + "\nprint('tail')\n"]  # the third is cut at "\nprint"
    fn = CrowdReward(tasks, labels_per_program=5, seed=3)
    assert fn.__name__ == "crowd_reward"
    scores = fn([t.prompt] * 3, comps, completion_ids=None, task_id=[t.task_id] * 3)
    assert len(scores) == 3 and all(isinstance(s, float) and math.isfinite(s) for s in scores)

    # by hand: same crowd, same label draws (call 0 -> rng [seed, 0]), a fresh CrowdModel
    programs = [t.program(t.truncate(c)) for c in comps]
    results = check_many([t.check_item(t.truncate(c)) for c in comps], progress=False)
    assert [r.passed for r in results] == [True, False, True]
    truths = {j: line_truth(p, t, passed=r.passed) for j, (p, r) in enumerate(zip(programs, results, strict=True))}
    crowd = paper_crowd(30, seed=3)
    labels = crowd.label_programs(truths, k=5, rng=np.random.default_rng([3, 0]))
    model = CrowdModel()
    model.add_annotators(crowd.names)
    want = []
    for j in range(3):  # s over the generated lines only: the prompt's lines are given
        post = model.ingest(labels[labels["program_id"] == j], program=programs[j], program_id=j).posteriors
        mask = counted_lines(programs[j])
        mask[:t.prompt.count("\n")] = False
        want.append(float((post[mask] > 0.5).mean()))
    assert scores == pytest.approx(want)
    assert fn.crowd_model.reliabilities.to_numpy() == pytest.approx(model.reliabilities.to_numpy())
    assert scores[0] > scores[1]
    assert fn.last["passed"].tolist() == [True, False, True]
    assert scores[2] == pytest.approx(fn.last["s_bayes"][2])

    # online: a second call uses the updated reliabilities, a new label draw
    again = fn([t.prompt], [t.reference])
    assert fn.calls == 2 and fn.n_scored == 4 and len(again) == 1
    assert len(fn.crowd_model.history) > 0

    # an empty completion has no generated line: s = 0, not the prompt's share
    assert fn([t.prompt], [""], task_id=[t.task_id]) == [0.0]


def test_task_lookup_and_sources(tasks):
    fn = CrowdReward(tasks, reward="oracle")
    # by prompt text (also when a chat template prefixes it), no task_id column
    s = fn(["<bos>" + tasks[1].prompt, tasks[2].prompt], [tasks[1].reference, WRONG])
    assert fn.last["task_id"].tolist() == [tasks[1].task_id, tasks[2].task_id]
    assert s[0] == 1.0 and s[1] < 1.0
    # conversational completions
    tests = CrowdReward(tasks, reward="tests")
    assert tests([tasks[0].prompt] * 2, [[{"role": "assistant", "content": tasks[0].reference}],
                                         [{"role": "assistant", "content": WRONG}]]) == [1.0, 0.0]
    with pytest.raises(KeyError):
        fn(["no such prompt"], ["x"])
    with pytest.raises(KeyError):
        fn(None, ["x"], task_id=["nope"])
    with pytest.raises(ValueError):
        CrowdReward(tasks, labels_per_program=99)
    with pytest.raises(ValueError, match="reward must be one of"):
        CrowdReward(tasks, reward="reward_model")
    with pytest.raises(ValueError, match="shape must be one of"):
        CrowdReward(tasks, shape="mean")
    # every source of crlhf.reward, every shape: the reference is right on every line, the
    # oracle pays it 1 under each shape, and an empty completion gets 0 from every source
    for shape in ("share", "all_correct", "product"):
        oracle = CrowdReward(tasks, reward="oracle", shape=shape)
        assert oracle([tasks[1].prompt] * 2, [tasks[1].reference, ""]) == [1.0, 0.0]
    for source in ("majority", "single", "dawid_skene", "bayes"):
        fn = CrowdReward(tasks, reward=source, shape="product")
        got = fn([tasks[1].prompt] * 2, [tasks[1].reference, ""])
        assert 0.0 <= got[0] <= 1.0 and got[1] == 0.0
        if source == "majority":  # the product of the vote shares over the generated lines
            program = fn.last["program"][0]
            mask = counted_lines(program)
            mask[:tasks[1].prompt.count("\n")] = False
            lab = fn.last_labels[fn.last_labels.program_id == fn.last["program_id"][0]]
            share = lab.groupby("line")["label"].apply(lambda x: float((x == 1).mean()))
            expect = float(np.prod([share.get(i, 0.0) for i in np.flatnonzero(mask)]))
            assert got[0] == pytest.approx(expect) and expect > 0
        if source == "single":
            assert got[0] in (0.0, 1.0)
    ds = trl_dataset(tasks)
    assert ds.column_names == ["prompt", "task_id"] and len(ds) == len(tasks)


def test_grpo_two_steps_on_the_tiny_coder(tasks, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from crlhf import tiny

    if not (tiny.MODEL_DIR / "config.json").is_file():
        pytest.skip("the packaged tiny coder is missing")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import GRPOConfig, GRPOTrainer

        model = AutoModelForCausalLM.from_pretrained(str(tiny.MODEL_DIR))  # a path: beta > 0 reloads it
        tok = AutoTokenizer.from_pretrained(str(tiny.MODEL_DIR))
        fn = CrowdReward(tasks, labels_per_program=3, seed=0)
        seen = []
        call = CrowdReward.__call__

        def record(self, prompts, completions, completion_ids=None, **kwargs):
            seen.append((len(prompts), len(completions), len(completion_ids), len(kwargs["task_id"])))
            return call(self, prompts, completions, completion_ids=completion_ids, **kwargs)

        monkeypatch.setattr(CrowdReward, "__call__", record)
        args = GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                          num_generations=2, max_completion_length=32, beta=0.04, learning_rate=1e-5,
                          use_cpu=True, bf16=False, report_to=[], logging_steps=1, save_strategy="no",
                          seed=0, dataloader_num_workers=0)
        trainer = GRPOTrainer(model=model, reward_funcs=[fn], args=args, train_dataset=trl_dataset(tasks),
                              processing_class=tok)
        trainer.train()
    finally:
        torch.set_num_threads(old)
    assert fn.calls >= 2 and len(seen) == fn.calls
    assert all(c == (2, 2, 2, 2) for c in seen), seen
    assert fn.n_scored == 2 * fn.calls and len(fn.last) == 2
    assert set(fn.last["task_id"]) <= {t.task_id for t in tasks}
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert logged and all(math.isfinite(h["reward"]) for h in logged)
    assert any(k.startswith("rewards/crowd_reward") for h in logged for k in h)
    assert os.environ["OMP_NUM_THREADS"] == "1"
