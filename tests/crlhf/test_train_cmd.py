"""crlhf train (the config file's own checks: test_train_config.py): defaults and the command
line's error; configs/tiny_quick.toml runs end to end on the tiny coder and writes the report
(baseline and w/cRLHF rows with intervals), quietly; a second invocation redoes nothing and more
rounds continue the run; SFT + LoRA; human labels through a label store (--db); the PPO step
through a single-process accelerate; the LoRA reference is the adapter-free base. One torch
thread, tiny sizes."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from crlhf import cli, tiny  # noqa: E402
from crlhf.report import passk_frame  # noqa: E402
from crlhf.simclass import SimulatedClass  # noqa: E402
from crlhf.simulate import make_crowd  # noqa: E402
from crlhf.train_cmd import run_train  # noqa: E402
from crlhf.train_config import load_config, parse_config  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "configs" / "tiny_quick.toml"


def quick_text(**tables) -> str:
    """configs/tiny_quick.toml with tables appended or keys replaced (``{"loop": {"rounds": 1}}``)."""
    import tomllib

    data = tomllib.loads(QUICK.read_text())
    for table, values in tables.items():
        data.setdefault(table, {}).update(values)
    lines = []
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {json.dumps(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- the file
def test_config_defaults_none_and_the_command_line_error(tmp_path, capsys):
    cfg = parse_config('[loop]\nlabels_per_program = "none"\n[model]\ndtype = "none"\n', "x.toml")
    assert cfg.loop_config(0, None).labels_per_program is None and cfg.model.dtype is None
    assert cfg.out == str(Path("runs") / "train" / "x")  # the default run folder is named after the file
    resolved = load_config(QUICK, out=str(tmp_path / "o"), db="x.db").to_dict()
    assert resolved["out"] == str(tmp_path / "o") and resolved["db"] == "x.db"
    assert resolved["loop"]["crowd"] == "store"  # --db means human labels
    assert resolved["crowd_model"]["reliability"] == "two_coin" and resolved["ppo"]["ppo_epochs"] == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[loop]\nn = 2.5\n")
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", str(bad)])
    assert exc.value.code == 2
    assert f"{bad}: [loop] n: expected an integer, got 2.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = capsys.readouterr().out
    for option in ("CONFIG", "--out", "--db", "--quiet"):
        assert option in help_text


# ---------------------------------------------------------------------------------------------- end to end
def _samples(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.glob("*_samples.jsonl"))


def test_quick_config_end_to_end_quiet_then_resumes_without_redoing_work(tmp_path, capfd):
    out = tmp_path / "run"
    assert cli.main(["train", str(QUICK), "--out", str(out)]) == 0
    printed = capfd.readouterr()
    for noise in ("Writing model shards", "Loading weights", "Warning", "warn("):
        assert noise not in printed.out + printed.err, noise
    assert "cRLHF rounds" in printed.err  # our own progress bars stay

    assert (out / "config.toml").read_text() == QUICK.read_text()
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["loop"]["rounds"] == 2 and saved["eval"]["temperatures"] == [0.2, 0.8]
    report = (out / "report.md").read_text()
    rows = {line.split(" | ")[0][2:]: line.strip("| ").split(" | ")[1:] for line in report.splitlines()
            if line.startswith(("| baseline |", "| w/cRLHF |", "| gain (points) |"))}
    assert set(rows) == {"baseline", "w/cRLHF", "gain (points)"}
    assert all(len(r) == 6 and all("[" in c for c in r) for r in rows.values())  # 4 cells + 2 best, with intervals
    assert "95% bootstrap interval over tasks" in report and "paired bootstrap" in report
    header = next(line for line in report.splitlines() if line.startswith("| model |")).strip("| ").split(" | ")[1:]
    results = json.loads((out / "results.json").read_text())
    minicode = results["task_sets"]["minicode"]
    assert minicode["tasks"] == 4 and minicode["n"] == 4
    for label, key in (("baseline", "baseline"), ("w/cRLHF", "crlhf"), ("gain (points)", "gain")):
        for column, text in zip(header, rows[label], strict=True):  # the report shows results.json's numbers
            cell = minicode["table"][key][column]
            shown = [float(x) for x in re.findall(r"[+-]?\d+\.\d", text.split(" at ")[0])]
            assert shown == pytest.approx([100 * cell[f] for f in ("mean", "lo", "hi")], abs=0.051), (label, column)
    gain = results["per_seed"]["0"]["gain"]["minicode"]
    for r in minicode["crlhf"]:
        t, k = f"{r['temperature']:g}", f"pass@{r['k']}"
        before = next(b for b in minicode["baseline"] if (b["temperature"], b["k"]) == (r["temperature"], r["k"]))
        assert gain[k][t] == pytest.approx(r["pass_at_k"] - before["pass_at_k"])
    for side in ("baseline", "crlhf"):
        assert {(r["temperature"], r["k"]) for r in minicode[side]} == {(0.2, 1), (0.8, 1), (0.2, 4), (0.8, 4)}
        assert all(r["lo"] <= r["pass_at_k"] <= r["hi"] for r in minicode[side])
    assert [r["round"] for r in results["per_seed"]["0"]["rounds"]] == [1, 2]
    assert results["invocation"]["seeds"]["0"] == {"baseline_sampled": 32, "rounds_run": 2, "after_sampled": 32}
    assert (out / "passk.png").stat().st_size > 0
    assert set(json.loads((out / "passk.json").read_text())["minicode"]) == {"baseline", "crlhf"}
    seed = out / "seed-0"
    counts = (_samples(seed / "baseline"), _samples(seed / "after-round-002"))
    checkpoint = (seed / "run" / "checkpoints" / "round-002" / "model.safetensors").stat().st_mtime_ns

    # the same command again: nothing is sampled or trained again
    assert cli.main(["train", str(QUICK), "--out", str(out), "--quiet"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["invocation"]["seeds"]["0"] == {"baseline_sampled": 0, "rounds_run": 0, "after_sampled": 0}
    assert again["task_sets"] == results["task_sets"]
    assert (_samples(seed / "baseline"), _samples(seed / "after-round-002")) == counts
    assert (seed / "run" / "checkpoints" / "round-002" / "model.safetensors").stat().st_mtime_ns == checkpoint

    # one more round continues the run; another change is refused, naming the setting
    more = tmp_path / "more.toml"
    more.write_text(quick_text(loop={"rounds": 3}))
    run_train(load_config(more, out=str(out)), progress=False)
    third = json.loads((out / "results.json").read_text())
    assert third["invocation"]["seeds"]["0"] == {"baseline_sampled": 0, "rounds_run": 1, "after_sampled": 32}
    assert [r["round"] for r in third["per_seed"]["0"]["rounds"]] == [1, 2, 3]
    other = tmp_path / "other.toml"
    other.write_text(quick_text(loop={"n": 4}))
    with pytest.raises(ValueError, match=r"settings differ: loop\.n "):
        run_train(load_config(other, out=str(out)), progress=False)


def test_a_run_folder_written_before_the_renames_still_resumes(tmp_path):
    """config.json from before ``[crowd]`` became ``[crowd_model]`` and ``[ppo] lam`` became
    ``gae_lambda`` is the same config, not one whose settings differ."""
    from crlhf.train_cmd import _check_run_folder

    now = load_config(QUICK).to_dict()
    old = json.loads(json.dumps(now))
    old["crowd"] = old.pop("crowd_model")
    old["ppo"]["lam"] = old["ppo"].pop("gae_lambda")
    (tmp_path / "config.json").write_text(json.dumps({"config": old}))
    _check_run_folder(tmp_path, now)
    old["ppo"]["lam"] = 0.5  # a real difference is still caught, under the new name
    (tmp_path / "config.json").write_text(json.dumps({"config": old}))
    with pytest.raises(ValueError, match=r"settings differ: ppo\.gae_lambda"):
        _check_run_folder(tmp_path, now)


def test_sft_then_lora_rounds_and_the_sft_is_reused(tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"text": f"return {i} plus a", "code": f"def f(a):\n    return a + {i}\n"})
                            + "\n" for i in range(6)))
    config = tmp_path / "lora.toml"
    config.write_text(quick_text(sft={"data": str(data), "max_steps": 2, "batch_size": 2, "logging_steps": 1},
                                 lora={"enabled": True, "r": 4, "alpha": 8}, loop={"rounds": 1}))
    out = tmp_path / "run"
    first = run_train(load_config(config, out=str(out)), progress=False)
    assert first["invocation"]["sft"] == "trained" and first["model"] == "tiny+SFT"
    assert json.loads((out / "sft" / "sft_result.json").read_text())["steps"] == 2
    ckpt = out / "seed-0" / "run" / "checkpoints" / "round-001"
    assert (ckpt / "adapter_config.json").is_file()  # the adapter only, on the SFT model
    assert not (ckpt / "reference").exists() and not (ckpt / "model.safetensors").exists()
    assert json.loads((ckpt / "adapter_config.json").read_text())["base_model_name_or_path"] == str(out / "sft")
    assert "| w/cRLHF |" in (out / "report.md").read_text()
    second = run_train(load_config(config, out=str(out)), progress=False)
    assert second["invocation"]["sft"] == "reused"
    assert second["invocation"]["seeds"]["0"] == {"baseline_sampled": 0, "rounds_run": 0, "after_sampled": 0}


def test_several_seeds_report_mean_and_std(tmp_path):
    config = tmp_path / "seeds.toml"
    config.write_text(quick_text(loop={"rounds": 1}).replace("seeds = [0]", "seeds = [0, 1]"))
    results = run_train(load_config(config, out=str(tmp_path / "run")), progress=False)
    assert results["seeds"] == [0, 1] and set(results["per_seed"]) == {"0", "1"}
    assert all((tmp_path / "run" / f"seed-{s}" / "after-round-001" / "results.json").is_file() for s in (0, 1))
    for side in ("baseline", "crlhf"):
        for r in results["task_sets"]["minicode"][side]:
            runs = [passk_frame(results["per_seed"][s][side]["minicode"]) for s in ("0", "1")]
            values = [float(f[(f.temperature == r["temperature"]) & (f.k == r["k"])].pass_at_k.iloc[0]) for f in runs]
            assert r["seeds"] == 2 and r["pass_at_k"] == pytest.approx(np.mean(values))
            assert r["std"] == pytest.approx(np.std(values, ddof=1))
    report = (tmp_path / "run" / "report.md").read_text()
    assert "mean ± standard deviation over 2 seeds" in report
    for label in ("baseline", "w/cRLHF", "gain (points)"):
        assert f"| {label}, mean ± std | " in report
        assert all(f"| {label}, seed {s} | " in report for s in (0, 1))


def _all_correct(programs, sandbox) -> dict:
    """Line truth for the simulated class: every line of every model-written program correct."""
    from crlhf.crowd import program_lines

    return {p: np.ones(len(program_lines(t)), dtype=np.int64)
            for p, t in zip(programs["program_id"], programs["program"], strict=True)}


def test_db_trains_on_labels_from_the_store(tmp_path):
    from crlhf.store import LabelStore

    db = tmp_path / "class.db"
    url = f"sqlite:///{db}"
    names = ["ann-a", "ann-b", "ann-c"]
    config = tmp_path / "class.toml"
    config.write_text(quick_text(loop={"rounds": 1, "store_poll": 0.05, "store_timeout": 60}))
    class_store = LabelStore(url)
    with SimulatedClass(class_store, make_crowd([0.8, 0.8, 0.8], names=names), _all_correct, labels_per_program=3,
                        poll=0.05):
        results = run_train(load_config(config, out=str(tmp_path / "run"), db=str(db)), progress=False)
    class_store.close()
    assert results["config"]["loop"]["crowd"] == "store" and results["config"]["db"] == str(db)
    store = LabelStore(url)
    assert len(store.rounds()) == 1 and len(store.programs(gold=False)) == 4  # 2 prompts x 2 programs
    store.close()
    labels = (tmp_path / "run" / "seed-0" / "run" / "labels.csv").read_text()
    assert all(name in labels for name in names)
    assert "labels from the store" in (tmp_path / "run" / "report.md").read_text()


# ---------------------------------------------------------------------------------------------- accelerate, LoRA
def test_ppo_step_goes_through_a_single_process_accelerator_unchanged(tmp_path):
    from crlhf.demo import rl_tasks
    from crlhf.loop import run_loop
    from crlhf.train_cmd import _accelerator

    config = tmp_path / "acc.toml"
    config.write_text(quick_text(ppo={"use_accelerate": True}, loop={"rounds": 1}))
    cfg = load_config(config)
    acc = _accelerator(cfg)
    assert acc is not None and acc.num_processes == 1
    tasks = rl_tasks(0, 6)[1]
    plain_cfg = tmp_path / "plain.toml"
    plain_cfg.write_text(quick_text(loop={"rounds": 1}))
    plain = run_loop(tiny.load(device="cpu"), tasks, load_config(plain_cfg).loop_config(0, None), progress=False)
    through = run_loop(tiny.load(device="cpu"), tasks, cfg.loop_config(0, None), progress=False, accelerator=acc)
    assert through.trainer.accelerator is acc and plain.trainer.accelerator is None
    assert type(through.trainer.module).__name__ == "_PolicyWithValue"  # no DDP wrapper in one process
    for col in ("reward_mean", "kl", "policy_loss", "value_loss", "entropy"):
        assert through.metrics[col].tolist() == pytest.approx(plain.metrics[col].tolist(), rel=1e-6, abs=1e-9), col


def test_lora_reference_is_the_base_only_the_adapter_trains_and_a_checkpoint_reloads(tmp_path):
    from crlhf.policy import add_lora
    from crlhf.ppo import PPOConfig, PPOTrainer, is_peft_model

    policy = tiny.load(device="cpu")
    prompts = ["def add(a, b):\n", "def is_even(n):\n    "]
    comps = [c for row in policy.sample(prompts, n=2, max_new_tokens=16, seed=0) for c in row]
    queries, responses = [c.prompt_ids for c in comps], [c.token_ids for c in comps]
    base_logprobs = policy.logprobs(queries, responses)
    base_weights = {k: v.clone() for k, v in policy.model.state_dict().items()}

    policy.model = add_lora(policy.model, r=4, alpha=8)
    assert is_peft_model(policy.model)
    trainer = PPOTrainer(policy.model, policy.tokenizer, PPOConfig(ppo_epochs=2, learning_rate=5e-2))
    assert trainer.ref_model is None  # no second copy of the weights
    trainable = {n for n, p in policy.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    for _ in range(3):
        trainer.step(queries, responses, [1.0, 0.0, 0.5, 0.0])
    rollout = trainer.rollout(queries, responses, [1.0, 0.0, 0.5, 0.0])
    for i, lp in enumerate(base_logprobs):  # the reference is the adapter-free base
        assert rollout.ref_logprobs[i, :len(lp)] == pytest.approx(lp, abs=1e-5)
    assert float(rollout.kl.abs().max()) > 1e-3  # while the policy has moved
    moved = {n: p for n, p in policy.model.named_parameters() if "lora_B" in n}
    assert any(float(p.detach().abs().max()) > 0 for p in moved.values())
    base_now = policy.model.get_base_model().state_dict()
    for name, before in base_weights.items():  # every base weight as it was
        key = name if name in base_now else name.replace(".weight", ".base_layer.weight").replace(
            ".bias", ".base_layer.bias")
        assert torch.equal(base_now[key], before), name

    path = trainer.save_pretrained(tmp_path / "ckpt", reference=True)
    assert (path / "adapter_config.json").is_file() and not (path / "reference").exists()
    loaded = PPOTrainer.from_pretrained(path, tokenizer=policy.tokenizer)
    assert is_peft_model(loaded.model) and loaded.ref_model is None and loaded.steps == 3
    again = loaded.rollout(queries, responses, [1.0, 0.0, 0.5, 0.0])
    assert torch.allclose(again.logprobs, rollout.logprobs, atol=1e-5)
    assert torch.allclose(again.ref_logprobs, rollout.ref_logprobs, atol=1e-5)
    assert torch.allclose(again.values, rollout.values, atol=1e-6)
