"""Completions/s and tokens/s of one cRLHF round (sampling + scoring + PPO update) vs TRL's GRPOTrainer.

One round, ours: ``Policy.sample`` (P prompts x n samples), a synthetic score per completion,
one ``PPOTrainer.step_completions`` update (rollout: policy + reference forwards; then
``ppo_epochs`` epochs of one whole-batch optimiser step). Two rows: ``ppo_epochs=1`` (the same
number of optimiser steps per batch as TRL's GRPO default, ``num_iterations=1``; the ratio
uses it) and ``ppo_epochs=4`` (Ziegler et al.'s default).

TRL: ``GRPOTrainer`` on the same model weights, the same batch (``per_device_train_batch_size``
= P x n completions, ``num_generations=n``, ``max_completion_length``), ``beta=0.04`` (a
reference model, as ours has), a reward function returning the same score; seconds per step
from a ``TrainerCallback`` (step ends), the first step (warm-up) left out.

The score (both sides): a deterministic function of the completion text only,
``crc32(text) / 2**32`` in [0, 1): cheap and reproducible; the point is throughput, and a
random model's text carries no signal a crowd could judge. No stop sequences on either side:
both sample up to ``max_new_tokens`` or the end-of-sequence token (mean lengths are reported).

Devices (``--device auto``: CUDA if present, else CPU):
* CPU: the packaged tiny coder (``crlhf.tiny.load``; without a checkpoint, a random GPT-2 of
  its shape, and the output says so), 8 minicode prompts x 8 samples, 64 new tokens, float32,
  one torch thread (``--smoke``: 4 x 2 samples, 16 new tokens).
* CUDA: a random CodeGen-350M-shaped model (``benchmarks.sampling.SHAPES``) in bfloat16 weights,
  PPO forwards under bf16 autocast, sampling with ``cache_implementation="static"``; batch
  8 prompts x 8 samples = 64 completions, prompt 64 + 128 new tokens (NOTES.md's setup). The
  first round compiles the static-cache decoder: it is timed on its own and left out.
  ``--smoke`` with ``--device cpu`` runs this path's code with a tiny CodeGen shape.

    python benchmarks/ppo_throughput.py [--json PATH] [--device cpu|cuda|auto] [--smoke] [--skip-trl]
                                        [--rounds 3] [--trl-steps 3] [--trl-static]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import print_table, write_json

HEADER = ["run", "completions", "seconds/round", "completions/s", "tokens/s", "mean length", "note"]


def score_text(text: str) -> float:
    """The synthetic score: ``crc32(text) / 2**32`` (deterministic, in [0, 1))."""
    return zlib.crc32(text.encode("utf-8", "replace")) / 2**32


# ------------------------------------------------------------------------------ models
def codegen_policy(shape: str, device: str, prompts: int, prompt_tokens: int):
    """(policy, prompt strings, info): a random CodeGen model of ``shape`` and a word-level tokenizer
    whose prompts are exactly ``prompt_tokens`` tokens (as in ``benchmarks/sampling.py``)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CodeGenConfig, CodeGenForCausalLM, PreTrainedTokenizerFast

    from benchmarks.sampling import SHAPES
    from crlhf.policy import Policy

    V = 51200 if shape == "codegen-350M" else 512
    vocab = {f"t{i}": i for i in range(V - 2)}
    vocab.update({"<pad>": V - 2, "<|endoftext|>": V - 1})
    wl = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    wl.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=wl, pad_token="<pad>", eos_token="<|endoftext|>",
                                  padding_side="left")
    config = CodeGenConfig(vocab_size=V, bos_token_id=V - 1, eos_token_id=V - 1, pad_token_id=V - 2, **SHAPES[shape])
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = CodeGenForCausalLM(config).to(dtype).eval()
    ids = torch.randint(0, V - 2, (prompts, prompt_tokens), generator=torch.Generator().manual_seed(0))
    texts = [" ".join(f"t{i}" for i in row) for row in ids.tolist()]
    return Policy(model, tok), texts, f"random CodeGen, {shape} shape"


def tiny_policy(prompts: int):
    """(policy, minicode prompts, description, fallback) on CPU."""
    from benchmarks.sampling import cpu_policy
    from crlhf.tasks import load_tasks

    policy, description, fallback = cpu_policy("tiny")
    texts = [t.prompt for t in load_tasks("minicode", split="test", n=prompts, seed=0)]
    return policy, texts, description, fallback


# ------------------------------------------------------------------------------ ours
def ours_rows(policy, prompts, n, new_tokens, rounds, ppo_epochs_list, cache, sync, budget_s=None):
    """Rows for our round, one per ``ppo_epochs`` value; the first round of each is timed alone."""
    import copy

    from crlhf.ppo import PPOConfig, PPOTrainer

    rows, start = [], time.perf_counter()
    initial = copy.deepcopy(policy.model.state_dict()) if len(ppo_epochs_list) > 1 else None
    for k, epochs in enumerate(ppo_epochs_list):
        if budget_s is not None and time.perf_counter() - start > budget_s:
            rows.append({"run": f"ours, ppo_epochs={epochs}", "note": f"skipped: over the {budget_s:.0f} s budget"})
            continue
        if k and initial is not None:
            policy.model.load_state_dict(initial)
        trainer = PPOTrainer(policy.model, policy.tokenizer,
                             PPOConfig(ppo_epochs=epochs, temperature=1.0, learning_rate=1e-6, seed=0))
        times, parts, lengths, stats = [], [], [], {}
        for r in range(rounds + 1):
            sync()
            t0 = time.perf_counter()
            comps = policy.sample(prompts, n=n, temperature=1.0, max_new_tokens=new_tokens, stop=(), seed=r,
                                  batch_size=len(prompts) * n, progress=False, cache_implementation=cache)
            sync()
            t1 = time.perf_counter()
            scores = [[score_text(c.text) for c in row] for row in comps]
            t2 = time.perf_counter()
            stats = trainer.step_completions(comps, scores)
            sync()
            t3 = time.perf_counter()
            lengths.append(sum(len(c.token_ids) for row in comps for c in row))
            times.append(t3 - t0)
            parts.append({"sample": t1 - t0, "score": t2 - t1, "update": t3 - t2})
        count = len(prompts) * n
        timed, tokens = times[1:], lengths[1:]
        sec = sum(timed) / len(timed)
        mean_parts = {key: sum(p[key] for p in parts[1:]) / len(timed) for key in parts[0]}
        rows.append({"run": f"ours, ppo_epochs={epochs}", "completions": count, "seconds_per_round": sec,
                     "completions_per_s": count / sec, "tokens_per_s": sum(tokens) / sum(timed),
                     "mean_length": sum(tokens) / (count * len(timed)), "first_round_seconds": times[0],
                     "round_seconds": timed, "parts_seconds": mean_parts,
                     "sample_logprob_gap": stats.get("sample_logprob_gap"),
                     "note": f"first round {times[0]:.1f} s left out; sample {mean_parts['sample']:.2f} s, "
                             f"update {mean_parts['update']:.2f} s"})
        del trainer
    return rows


# ------------------------------------------------------------------------------ TRL
def trl_row(folder, prompts, n, new_tokens, steps, cuda, static):
    """TRL GRPOTrainer on the model saved in ``folder``; seconds per step after a warm-up step."""
    t_import = time.perf_counter()
    import transformers
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    import trl

    import_s = time.perf_counter() - t_import
    count = len(prompts) * n
    stamps, lengths = [], []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if cuda:
                import torch
                torch.cuda.synchronize()
            if not stamps:
                stamps.append(time.perf_counter())

        def on_step_end(self, *a, **k):
            if cuda:
                import torch
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    def reward(prompts, completions, completion_ids=None, **kwargs):
        if completion_ids is not None:
            lengths.append(sum(len(c) for c in completion_ids))
        return [score_text(c) for c in completions]

    tok = AutoTokenizer.from_pretrained(folder)
    total = steps + 1
    ds = Dataset.from_dict({"prompt": list(prompts) * total})
    extra = {"cache_implementation": "static"} if static else {}
    args = GRPOConfig(output_dir=str(Path(folder) / "trl_out"), per_device_train_batch_size=count, num_generations=n,
                      max_completion_length=new_tokens, max_steps=total, learning_rate=1e-6, beta=0.04,
                      temperature=1.0, use_vllm=False, report_to="none", save_strategy="no", logging_steps=10 * total,
                      bf16=cuda, use_cpu=not cuda, gradient_checkpointing=False, disable_tqdm=True,
                      dataloader_num_workers=0, seed=0, **extra)
    t_init = time.perf_counter()
    trainer = GRPOTrainer(model=str(folder), reward_funcs=reward, args=args, train_dataset=ds, processing_class=tok,
                          callbacks=[Clock()])
    init_s = time.perf_counter() - t_init
    trainer.train()
    step_s = [b - a for a, b in itertools.pairwise(stamps)]
    timed = step_s[1:] or step_s
    sec = sum(timed) / len(timed)
    toks = lengths[-len(timed):] if len(lengths) >= len(timed) else []
    mean_len = sum(toks) / (count * len(toks)) if toks else None
    name = "TRL GRPOTrainer" + (", static cache" if static else "")
    return {"run": name, "completions": count, "seconds_per_round": sec, "completions_per_s": count / sec,
            "tokens_per_s": (mean_len * count / sec) if mean_len is not None else None, "mean_length": mean_len,
            "first_round_seconds": step_s[0] if step_s else None, "round_seconds": timed,
            "import_seconds": import_s, "init_seconds": init_s,
            "model_dtype": str(trainer.model.dtype).replace("torch.", ""),
            "versions": {"trl": trl.__version__, "transformers": transformers.__version__},
            "note": f"warm-up step {step_s[0]:.1f} s left out" if step_s else ""}


# ------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    parser.add_argument("--smoke", action="store_true", help="small sizes (a quick check of the script)")
    parser.add_argument("--skip-trl", action="store_true", help="only our round")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds after the first (default 3; smoke 1)")
    parser.add_argument("--trl-steps", type=int, default=None,
                        help="timed TRL steps after a warm-up (default 3; smoke 1)")
    parser.add_argument("--trl-static", action="store_true",
                        help="also TRL with cache_implementation='static' (another compile, ~30 s on a GPU)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads on CPU (default 1)")
    args = parser.parse_args(argv)

    import torch
    import transformers

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    cuda = device == "cuda"
    rounds = args.rounds if args.rounds is not None else (1 if args.smoke else 3)
    trl_steps = args.trl_steps if args.trl_steps is not None else (1 if args.smoke else 3)
    if not cuda:
        torch.set_num_threads(max(1, args.threads))
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, args.threads)))

    def sync():
        if cuda:
            torch.cuda.synchronize()

    start = time.perf_counter()
    fallback = False
    if cuda:
        P, n, prompt_tokens, T = (2, 4, 16, 16) if args.smoke else (8, 8, 64, 128)
        policy, prompts, description = codegen_policy("codegen-350M", "cuda", P, prompt_tokens)
        cache, dtype = "static", "bfloat16 weights, bf16 autocast"
    elif args.smoke and args.device == "cpu" and os.environ.get("PPO_THROUGHPUT_SMOKE_SHAPE") == "codegen":
        P, n, prompt_tokens, T = 2, 2, 8, 8  # the GPU path's code with a tiny CodeGen shape
        policy, prompts, description = codegen_policy("smoke", "cpu", P, prompt_tokens)
        cache, dtype = None, "float32"
    else:
        P, n, T = (4, 2, 16) if args.smoke else (8, 8, 64)
        policy, prompts, description, fallback = tiny_policy(P)
        prompt_tokens, cache, dtype = None, None, "float32"
    params = sum(p.numel() for p in policy.model.parameters())
    gpu_name = torch.cuda.get_device_name(0) if cuda else None
    print(f"{gpu_name or 'CPU'}: {description} ({params / 1e6:.1f}M parameters), {P} prompts x {n} samples, "
          f"up to {T} new tokens, cache {cache or 'dynamic'}, {dtype}", flush=True)

    folder = None
    if not args.skip_trl:  # save the initial weights for TRL before our rounds train them
        folder = Path(tempfile.mkdtemp(prefix="ppo_throughput_"))
        policy.model.save_pretrained(folder)
        policy.tokenizer.save_pretrained(folder)

    out = {"device": gpu_name or "cpu", "device_type": device, "torch": torch.__version__,
           "transformers": transformers.__version__, "trl": None, "model": description, "fallback_model": fallback,
           "params": params, "dtype": dtype, "cache_implementation": cache or "dynamic", "prompts": P,
           "samples_per_prompt": n, "completions_per_round": P * n, "prompt_tokens": prompt_tokens,
           "max_new_tokens": T, "temperature": 1.0, "stop_sequences": [],
           "score": "crc32(completion text) / 2**32 (deterministic synthetic score)",
           "threads": torch.get_num_threads(), "smoke": args.smoke, "rounds": rounds, "trl_steps": trl_steps}
    rows = ours_rows(policy, prompts, n, T, rounds, [1, 4], cache, sync)
    if cuda:
        out["max_memory_allocated_gib_ours"] = torch.cuda.max_memory_allocated() / 2**30
    if args.json:  # a partial file first, in case a later part runs out of time
        write_json(args.json, {**out, "rows": rows, "partial": True})
    del policy
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    if not args.skip_trl:
        for static in ([False, True] if args.trl_static else [False]):
            try:
                row = trl_row(folder, prompts, n, T, trl_steps, cuda, static)
                out["trl"] = row["versions"]["trl"]
            except Exception as exc:  # record the failure, keep the rest
                row = {"run": "TRL GRPOTrainer" + (", static cache" if static else ""),
                       "note": f"{type(exc).__name__}: {exc}"[:400]}
                print(f"TRL failed: {row['note']}", flush=True)
            rows.append(row)
            if cuda:
                torch.cuda.empty_cache()
        shutil.rmtree(folder, ignore_errors=True)
    out["rows"] = rows
    out["seconds"] = time.perf_counter() - start

    by = {r["run"]: r for r in rows}
    ours, theirs = by.get("ours, ppo_epochs=1", {}), by.get("TRL GRPOTrainer", {})
    ratio = (ours["completions_per_s"] / theirs["completions_per_s"]
             if ours.get("completions_per_s") and theirs.get("completions_per_s") else None)
    ours4 = by.get("ours, ppo_epochs=4", {})
    ratio4 = (ours4["completions_per_s"] / theirs["completions_per_s"]
              if ours4.get("completions_per_s") and theirs.get("completions_per_s") else None)
    out["ratio_ours_over_trl"] = ratio
    out["ratio_ours_ppo4_over_trl"] = ratio4
    out["target_ratio_gpu"] = 3.0
    print_table(f"one round: {out['device']}, {description}, {P} x {n} = {P * n} completions, up to {T} new tokens"
                + (" (fallback model)" if fallback else ""),
                HEADER, [[r["run"], r.get("completions"), r.get("seconds_per_round"), r.get("completions_per_s"),
                          r.get("tokens_per_s"), r.get("mean_length"), r.get("note", "")] for r in rows], digits=2)
    print("ours/TRL completions/s: " + (f"{ratio:.2f}x (ppo_epochs=1)" if ratio else "-")
          + (f", {ratio4:.2f}x (ppo_epochs=4)" if ratio4 else "")
          + (f"; target on a GPU >= 3x: {'met' if ratio >= 3 else 'NOT met'}" if cuda and ratio else ""), flush=True)
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
