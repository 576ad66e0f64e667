"""``crlhf eval``: the command end to end on the tiny coder, its files, resuming, and its errors."""

import json
from math import comb

import pytest

from crlhf import eval_run, eval_samples
from crlhf.cli import main
from crlhf.policy import Policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def calls(monkeypatch):
    """Every ``Policy.sample`` call as ``(prompts, n)``: what was (re)generated."""
    seen = []
    original = Policy.sample

    def counting(self, prompts, n=1, *args, **kwargs):
        seen.append((list(prompts), n))
        return original(self, prompts, n, *args, **kwargs)

    monkeypatch.setattr(Policy, "sample", counting)
    return seen


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def passk_from_rows(rows, k):
    """pass@k per temperature, computed here from the samples file with exact binomials."""
    per = {}
    for r in rows:
        n, c = per.get((r["temperature"], r["task_id"]), (0, 0))
        per[(r["temperature"], r["task_id"])] = (n + 1, c + r["passed"])
    out = {}
    for (temp, _), (n, c) in per.items():
        out.setdefault(temp, []).append(1 - comb(n - c, k) / comb(n, k))
    return {f"{t:g}": sum(v) / len(v) for t, v in out.items()}


def run(out, *extra):
    return main(["eval", "--model", "tiny", "--tasks", "minicode", "--quiet", "--out", str(out), *extra])


def test_eval_writes_samples_results_table_and_plot_that_agree(tmp_path, calls, capsys):
    out = tmp_path / "run"
    assert run(out, "--limit", "3", "--n", "4", "--temperatures", "0.2,0.8", "--ks", "1,2,4,10") == 0
    printed = capsys.readouterr()
    assert "dropped k=10" in printed.err
    rows = rows_of(out / "minicode_samples.jsonl")
    assert len(rows) == 3 * 4 * 2
    assert len({(r["task_id"], r["temperature"], r["sample"]) for r in rows}) == len(rows)
    assert {r["status"] for r in rows} <= {"passed", "failed", "timeout", "error"}
    assert all(r["passed"] == (r["status"] == "passed") for r in rows)
    assert sum(len(p) * n for p, n in calls) == len(rows)

    results = json.loads((out / "results.json").read_text())
    mini = results["task_sets"]["minicode"]
    assert mini["tasks"] == 3 and mini["n"] == 4 and mini["ks"] == [1, 2, 4]
    for k in (1, 2, 4):
        expected = passk_from_rows(rows, k)
        assert mini[f"pass@{k}"] == pytest.approx(expected)
        best_t = max(expected, key=lambda t: (expected[t], -float(t)))
        assert mini["best"][f"pass@{k}"]["pass_at_k"] == pytest.approx(expected[best_t])
        assert f"{100 * expected[best_t]:.2f} (T=" in results["table_i"]
    assert "pass@10" not in mini
    assert sum(mini["statuses"].values()) == len(rows)

    table = (out / "table.md").read_text()
    assert results["table_i"] in table and "| tiny |" in table and "minicode pass@4" in table
    assert results["table_i"].splitlines()[-1] in printed.out
    plotted = json.loads((out / "passk.json").read_text())["minicode"]
    for temp, k, value, lo, hi in plotted["data"]:
        assert lo <= value <= hi
        assert value == pytest.approx(mini[f"pass@{k}"][f"{temp:g}"])
    assert (out / "passk.png").stat().st_size > 5_000
    config = json.loads((out / "config.json").read_text())
    assert config["sampling"] == {"model": "tiny", "seed": 0, "mbpp": None, "mbpp_style": None,
                                  "max_new_tokens": 128}


def test_resume_after_a_subset_samples_only_the_new_tasks(tmp_path, calls):
    out = tmp_path / "run"
    assert run(out, "--limit", "2", "--n", "3", "--temperatures", "0.6", "--ks", "1") == 0
    first = (out / "minicode_samples.jsonl").read_text()
    assert len(first.splitlines()) == 2 * 3
    calls.clear()
    assert run(out, "--limit", "4", "--n", "3", "--temperatures", "0.6", "--ks", "1,3") == 0
    after = (out / "minicode_samples.jsonl").read_text()
    assert after.startswith(first)  # append-only: nothing rewritten
    tasks = eval_run.load_task_set("minicode", limit=4)
    assert [p for p, _ in calls] == [[t.prompt for t in tasks[2:]]]  # only the two new tasks
    assert sum(len(p) * n for p, n in calls) == 2 * 3
    results = json.loads((out / "results.json").read_text())
    assert results["invocation"]["reused"] == 6 and results["invocation"]["sampled"] == 6
    assert results["task_sets"]["minicode"]["tasks"] == 4
    assert results["task_sets"]["minicode"]["pass@3"] == pytest.approx(
        passk_from_rows(rows_of(out / "minicode_samples.jsonl"), 3))
    calls.clear()
    assert run(out, "--limit", "4", "--n", "3", "--temperatures", "0.6", "--ks", "1") == 0
    assert calls == []  # everything is there: nothing sampled


def test_an_interrupted_run_resumes_to_the_samples_of_an_uninterrupted_one(tmp_path, calls, monkeypatch, capsys):
    monkeypatch.setattr(eval_run, "BLOCK_ROWS", 6)  # n=3: blocks of 2 tasks, 4 blocks over 2 temperatures
    args = ("--limit", "4", "--n", "3", "--temperatures", "0.2,0.8", "--ks", "1,3", "--batch-size", "8")
    assert run(tmp_path / "whole", *args) == 0
    assert len(calls) == 4
    whole = {(r["task_id"], r["temperature"], r["sample"]): r["completion"]
             for r in rows_of(tmp_path / "whole" / "minicode_samples.jsonl")}

    counting = Policy.sample  # the ``calls`` fixture's wrapper
    count = {"n": 0}

    def interrupted(self, *a, **kw):
        count["n"] += 1
        if count["n"] == 3:
            raise KeyboardInterrupt
        return counting(self, *a, **kw)

    monkeypatch.setattr(Policy, "sample", interrupted)
    assert run(tmp_path / "cut", *args) == 130
    assert "run the same command again" in capsys.readouterr().err
    path = tmp_path / "cut" / "minicode_samples.jsonl"
    assert len(rows_of(path)) == 2 * 2 * 3  # the two blocks sampled before the interruption were kept
    assert not (tmp_path / "cut" / "results.json").exists()
    with open(path, "a") as fh:  # and a write cut short by a crash
        fh.write('{"task_id": "minicode/')

    monkeypatch.setattr(Policy, "sample", counting)
    calls.clear()
    with pytest.warns(UserWarning, match="unfinished last line"):
        assert run(tmp_path / "cut", *args) == 0
    assert len(calls) == 2 and sum(len(p) * n for p, n in calls) == 2 * 2 * 3  # only the two missing blocks
    resumed = {(r["task_id"], r["temperature"], r["sample"]): r["completion"] for r in rows_of(path)}
    assert resumed == whole
    a = json.loads((tmp_path / "whole" / "results.json").read_text())["task_sets"]
    b = json.loads((tmp_path / "cut" / "results.json").read_text())["task_sets"]
    assert a == b


def test_a_saved_model_folder_and_a_run_folder_load(tmp_path, calls):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from crlhf import tiny

    tok = tiny.load(device="cpu").tokenizer
    torch.manual_seed(0)
    net = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=1, n_head=2,
                                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    policy = Policy(net.eval(), tok, device="cpu")
    for r in ("round-001", "round-002"):
        policy.save_pretrained(tmp_path / "demo" / "run" / "checkpoints" / r)
    assert eval_run.resolve_model(str(tmp_path / "demo"))[1].endswith("round-002")
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(tmp_path / "demo"), "--tasks", "minicode", "--limit", "2", "--n", "2",
                 "--temperatures", "0.8", "--ks", "1", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "demo/round-002"
    assert results["sampling"]["max_new_tokens"] == 64  # half of the random model's 128 positions
    assert results["sampling"]["model"] == str((tmp_path / "demo/run/checkpoints/round-002").resolve())
    assert len(rows_of(out / "minicode_samples.jsonl")) == 4
    folder = tmp_path / "demo" / "run" / "checkpoints" / "round-001"
    assert main(["eval", "--model", str(folder), "--tasks", "minicode", "--limit", "1", "--n", "1",
                 "--temperatures", "0", "--ks", "1", "--out", str(tmp_path / "eval1"), "--quiet"]) == 0
    with pytest.raises(SystemExit):  # a different model cannot resume this run folder
        main(["eval", "--model", str(folder), "--tasks", "minicode", "--limit", "1", "--n", "1", "--ks", "1",
              "--out", str(out), "--quiet"])


MBPP_ROWS = [
    {"task_id": 11, "text": "Write a function to add two numbers.", "code": "def add(a, b):\n    return a + b",
     "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"], "test_setup_code": "",
     "challenge_test_list": []},
    {"task_id": 12, "text": "Write a function to double a number.", "code": "def double(x):\n    return 2 * x",
     "test_list": ["assert double(2) == 4"], "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 700, "text": "A train-split problem.", "code": "def f(x):\n    return x",
     "test_list": ["assert f(1) == 1"], "test_setup_code": "", "challenge_test_list": []},
]


def test_mbpp_from_a_local_file(tmp_path, calls):
    data = tmp_path / "mbpp.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in MBPP_ROWS))
    out = tmp_path / "run"
    assert main(["eval", "--tasks", "mbpp", "--mbpp", str(data), "--n", "2", "--temperatures", "0.2",
                 "--ks", "1", "--max-new-tokens", "48", "--out", str(out), "--quiet"]) == 0
    rows = rows_of(out / "mbpp_samples.jsonl")
    assert sorted({r["task_id"] for r in rows}) == ["mbpp/11", "mbpp/12"]  # the test split only
    results = json.loads((out / "results.json").read_text())
    assert results["sampling"]["mbpp"] == str(data.resolve())
    assert results["task_sets"]["mbpp"]["pass@1"] == pytest.approx(passk_from_rows(rows, 1))
    assert "MBPP pass@1" in results["table_i"]
    other = tmp_path / "other.jsonl"
    other.write_text(data.read_text())
    with pytest.raises(SystemExit):  # the samples were drawn for another MBPP file
        main(["eval", "--tasks", "mbpp", "--mbpp", str(other), "--n", "2", "--ks", "1",
              "--max-new-tokens", "48", "--out", str(out), "--quiet"])


@pytest.mark.parametrize("args, message", [
    (["--tasks", "humaneval,foo"], "--tasks: unknown task set 'foo'"),
    (["--n", "5", "--ks", "10,100"], "--ks: every k (10, 100) exceeds --n 5"),
    (["--temperatures", "0.2,-0.5"], "argument --temperatures: takes finite numbers >= 0"),
    (["--temperatures", "hot"], "argument --temperatures: takes numbers >= 0, got 'hot'"),
    (["--ks", "1,0"], "argument --ks: takes positive integers"),
    (["--n", "0"], "--n takes positive integers"),
    (["--limit", "0"], "--limit takes positive integers"),
    (["--tasks", "mbpp", "--mbpp", "/no/such/mbpp.jsonl"], "--mbpp: no MBPP file at '/no/such/mbpp.jsonl'"),
    (["--model", "/no/such/model"], "--model: no folder '/no/such/model'"),
    (["--tasks", "minicode", "--max-new-tokens", "250", "--limit", "2"], "--max-new-tokens 250: 2 of 2 minicode"),
    (["--tasks", "humaneval", "--limit", "3"], "--max-new-tokens 128:"),
])
def test_bad_options_exit_2_naming_the_option(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--out", str(tmp_path / "x"), "--quiet", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_resuming_with_another_seed_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(out, "--limit", "1", "--n", "1", "--temperatures", "0.2", "--ks", "1") == 0
    with pytest.raises(SystemExit) as exc:
        run(out, "--limit", "1", "--n", "1", "--temperatures", "0.2", "--ks", "1", "--seed", "7")
    assert exc.value.code == 2
    assert "--seed: the run folder" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    for action in eval_run.build_parser()._actions:
        for opt in action.option_strings:
            assert opt in text
        assert action.help
    for opt in ("--model", "--tasks", "--n", "--temperatures", "--ks", "--out", "--mbpp", "--limit",
                "--max-new-tokens", "--batch-size", "--seed"):
        assert opt in text


def test_a_corrupt_samples_line_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "minicode_samples.jsonl"
    path.write_text('{"task_id": "a", "temperature": 0.2, "sample": 0, "completion": "", "passed": false, '
                    '"status": "failed"}\n{"task_id": "a", "temperature": 0.2, "sample": "x"}\n')
    with pytest.raises(ValueError, match=r"line 2: field 'sample'"):
        eval_samples.read_samples(path)


def test_blocks_are_fixed_groups_with_their_own_seeds():
    tasks = eval_run.load_task_set("minicode", limit=5)
    cfg = eval_run.EvalConfig(tasks=("minicode",), n=200, temperatures=(0.2, 0.8), ks=(1, 10, 100))
    assert cfg.block_tasks == 3
    blocks = eval_samples.plan_blocks("minicode", tasks, cfg, done=set())
    assert [(b.temperature, len(b.tasks), len(b.indices)) for b in blocks] == [
        (0.2, 3, 200), (0.2, 2, 200), (0.8, 3, 200), (0.8, 2, 200)]
    assert len({b.seed for b in blocks}) == 4
    done = {(tasks[0].task_id, 0.2, j) for j in range(200)} | {(tasks[1].task_id, 0.2, j) for j in range(150)}
    again = eval_samples.plan_blocks("minicode", tasks, cfg, done)
    first = again[0]
    assert [t.task_id for t in first.tasks] == [tasks[1].task_id] and first.indices == list(range(150, 200))
    assert again[1].tasks == [tasks[2]] and again[1].seed == blocks[0].seed
    assert sum(b.size for b in again) == sum(b.size for b in blocks) - 350


class ScriptedPolicy:
    """A stand-in model: the reference completion for the tasks in ``right``, a wrong one elsewhere."""

    max_positions = None

    def __init__(self, tasks, right):
        self.by_prompt = {t.prompt: t for t in tasks}
        self.right = set(right)

    def sample(self, prompts, n=1, **kwargs):
        from types import SimpleNamespace

        out = []
        for p in prompts:
            task = self.by_prompt[p]
            text = task.reference if task.task_id in self.right else "    return None\n"
            out.append([SimpleNamespace(text=text + "\ndef junk(:\n")] * n)  # cut at the stop sequence
        return out


def test_verdicts_through_the_python_api_with_a_scripted_model(tmp_path):
    data = tmp_path / "mbpp.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in MBPP_ROWS))
    tasks = eval_run.load_task_set("mbpp", mbpp=str(data))
    cfg = eval_run.EvalConfig(model="scripted", tasks=("mbpp",), n=2, temperatures=(0.2, 0.8), ks=(1, 2),
                              out=str(tmp_path / "run"), mbpp=str(data))
    results = eval_run.run_eval(cfg, policy=ScriptedPolicy(tasks, right={"mbpp/12"}), progress=False, echo=False)
    mbpp = results["task_sets"]["mbpp"]
    assert mbpp["pass@1"] == {"0.2": 0.5, "0.8": 0.5} and mbpp["pass@2"] == {"0.2": 0.5, "0.8": 0.5}
    assert mbpp["statuses"] == {"passed": 4, "failed": 4}
    rows = rows_of(tmp_path / "run" / "mbpp_samples.jsonl")
    assert all(r["passed"] == (r["task_id"] == "mbpp/12") for r in rows)
    assert all("junk" not in r["completion"] for r in rows)
    assert results["invocation"]["sampled"] == 8 and results["invocation"]["reused"] == 0
