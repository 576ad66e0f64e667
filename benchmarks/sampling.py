"""New tokens/s of ``Policy.sample``: batching on CPU, and the KV-cache kind on a GPU.

CPU: the packaged tiny coder (``crlhf.tiny.load``; without a checkpoint, a random GPT-2 of the
same shape, and the table says so) on 16 minicode prompts: one prompt at a time vs one batch,
and an evaluation-like load of 8 samples per prompt at the default batch size, without and with
the HumanEval stop sequences.

GPU (when ``torch.cuda.is_available()``): a random model shaped like Salesforce/codegen-350M
(20 layers, 1024 wide, 16 heads, rotary 32, vocab 51200) in bfloat16, batch 64, prompt 64 +
128 new tokens, with the default dynamic cache and with ``cache_implementation="static"``
(whose first call compiles; timed on its own row). Baseline: bare ``model.generate`` on the
same inputs (NOTES.md: 3,000 vs 15,900 new tokens/s on an H100). Also the automatic batch
size on 512 rows. Every GPU row records its error instead of stopping the script.

    python benchmarks/sampling.py [--json PATH] [--model tiny|PATH] [--new-tokens 64] [--repeat 3]
                                  [--skip-cpu] [--smoke-gpu-rows (the GPU rows' code, on CPU)]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import best_of, print_table, write_json

HEADER = ["setting", "rows", "batch", "new tokens", "seconds", "new tokens/s", "samples/s"]


def _row(setting, rows, batch, tokens, seconds, note=""):
    return {"setting": setting, "rows": rows, "batch": batch, "new_tokens": tokens, "seconds": seconds,
            "new_tokens_per_s": tokens / seconds if seconds else None,
            "samples_per_s": rows / seconds if seconds else None, "note": note}


def _kept(result) -> int:
    return sum(len(c.token_ids) for row in result for c in row)


def tiny_tokenizer(vocab_size: int = 1024):
    """A byte-level BPE trained on minicode (for the fallback model)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from crlhf.tasks import load_tasks

    text = [t.prompt + t.reference for t in load_tasks("minicode", split="train", n=1000, seed=0)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(text, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")


def cpu_policy(model: str):
    """(policy, description, is_fallback) for the CPU rows."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from crlhf.policy import Policy

    if model != "tiny":
        return Policy.from_pretrained(model, device="cpu", dtype=torch.float32), model, False
    try:
        from crlhf.tiny import load

        return load(device="cpu"), "crlhf tiny coder (packaged checkpoint)", False
    except (ImportError, AttributeError, FileNotFoundError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    net = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=128, n_layer=4, n_head=4,
                                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    print(f"no tiny coder ({reason}); using a random GPT-2 of its shape instead", flush=True)
    return Policy(net.eval(), tok, device="cpu"), "random GPT-2 of the tiny coder's shape (no checkpoint)", True


def cpu_rows(policy, new_tokens: int, repeat: int) -> list[dict]:
    from crlhf.tasks import load_tasks
    from crlhf.tasks.base import HUMANEVAL_STOP

    prompts = [t.prompt for t in load_tasks("minicode", split="test", n=16, seed=0)]
    kw = dict(temperature=0.8, max_new_tokens=new_tokens, stop=(), progress=False)

    def one_at_a_time():
        return [policy.sample([p], n=1, seed=i, batch_size=1, **kw)[0] for i, p in enumerate(prompts)]

    def batched():
        return policy.sample(prompts, n=1, seed=0, batch_size=len(prompts), **kw)

    def eval_like():
        return policy.sample(prompts, n=8, seed=0, **kw)

    def with_stops():
        return policy.sample(prompts, n=8, seed=0, **{**kw, "stop": HUMANEVAL_STOP})

    default_batch = policy.auto_batch_size(64, new_tokens)
    runs = [("one prompt at a time", one_at_a_time, 16, 1),
            ("16 prompts, one batch", batched, 16, 16),
            ("16 prompts x 8 samples, default batch", eval_like, 128, default_batch),
            ("same, HumanEval stop sequences (kept tokens)", with_stops, 128, default_batch)]
    rows = []
    for name, fn, n_rows, batch in runs:
        fn()  # warm-up
        seconds, result = best_of(fn, repeat)
        rows.append(_row(name, n_rows, batch, _kept(result), seconds))
    return rows


SHAPES = {  # CodeGen-350M-mono's shape, and a small one that checks the same code path on CPU
    "codegen-350M": dict(n_layer=20, n_embd=1024, n_head=16, rotary_dim=32, n_positions=2048, n_ctx=2048),
    "smoke": dict(n_layer=2, n_embd=64, n_head=4, rotary_dim=8, n_positions=256, n_ctx=256),
}


VOCAB = 51200  # CodeGen's; the last two ids are <pad> and <|endoftext|>


def random_codegen(device, shape):
    """A random CodeGen of ``shape`` (one of ``SHAPES``) in bf16 on CUDA, fp32 elsewhere, with a
    word-level tokenizer whose tokens are ``t0 .. t51197``: ``(Policy, dtype)``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CodeGenConfig, CodeGenForCausalLM, PreTrainedTokenizerFast

    from crlhf.policy import Policy

    V = VOCAB
    vocab = {f"t{i}": i for i in range(V - 2)}
    vocab.update({"<pad>": V - 2, "<|endoftext|>": V - 1})
    wl = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    wl.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=wl, pad_token="<pad>", eos_token="<|endoftext|>")
    config = CodeGenConfig(vocab_size=V, bos_token_id=V - 1, eos_token_id=V - 1, pad_token_id=V - 2, **SHAPES[shape])
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = CodeGenForCausalLM(config).to(dtype).eval()
    return Policy(model, tok), dtype


def gpu_rows(budget_s: float, device: str = "cuda", shape: str = "codegen-350M", batch: int = 64,
             prompt_tokens: int = 64, new_tokens: int = 128) -> tuple[dict, list[dict]]:
    """Rows for the random CodeGen-shaped model on ``device`` (``shape="smoke"`` on CPU checks the code)."""
    import torch

    start = time.perf_counter()
    cuda = torch.device(device).type == "cuda"
    V, B, P, T = VOCAB, batch, prompt_tokens, new_tokens
    policy, dtype = random_codegen(device, shape)
    model = policy.model
    ids = torch.randint(0, V - 2, (B, P), generator=torch.Generator().manual_seed(0))
    prompts = [" ".join(f"t{i}" for i in row) for row in ids.tolist()]
    input_ids, mask = ids.to(device), torch.ones_like(ids).to(device)
    info = {"device": torch.cuda.get_device_name(device) if cuda else "cpu", "shape": shape,
            "params": sum(p.numel() for p in model.parameters()), "dtype": str(dtype).replace("torch.", ""),
            "batch": B, "prompt_tokens": P, "new_tokens": T, "setup_seconds": time.perf_counter() - start}

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn):
        sync()
        t0 = time.perf_counter()
        result = fn()
        sync()
        return time.perf_counter() - t0, result

    def bare(cache):
        def fn():
            with torch.no_grad():
                return model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, temperature=0.8,
                                      max_new_tokens=T, min_new_tokens=T, pad_token_id=V - 2,
                                      cache_implementation=cache)
        return fn

    def wrapped(cache, rows=prompts, batch_size=B):
        return lambda: policy.sample(rows, n=1, temperature=0.8, max_new_tokens=T, seed=0, batch_size=batch_size,
                                     progress=False, cache_implementation=cache)

    def bare_tokens(out):
        return (out.shape[1] - P) * B

    auto = policy.auto_batch_size(P, T)
    plan = [  # (setting, run, count new tokens, rows, batch, timing: warm = warm-up then best of 2)
        ("bare generate, dynamic cache", bare(None), bare_tokens, B, B, "warm"),
        ("Policy.sample (HumanEval stops), dynamic cache", wrapped(None), _kept, B, B, "warm"),
        ("bare generate, static cache: first call (compiles)", bare("static"), bare_tokens, B, B, "once"),
        ("bare generate, static cache", bare("static"), bare_tokens, B, B, "best"),
        ("Policy.sample (HumanEval stops), static cache: first call", wrapped("static"), _kept, B, B, "once"),
        ("Policy.sample (HumanEval stops), static cache", wrapped("static"), _kept, B, B, "best"),
        (f"Policy.sample (HumanEval stops), dynamic cache, {8 * B} rows, auto batch", wrapped(None, prompts * 8, None),
         _kept, 8 * B, min(auto, 8 * B), "once"),
    ]
    rows = []
    for name, fn, count, n_rows, batch_size, mode in plan:
        if time.perf_counter() - start > budget_s:
            rows.append({"setting": name, "rows": n_rows, "batch": batch_size,
                         "note": f"skipped: over the {budget_s:.0f} s budget"})
            continue
        try:
            if mode == "warm":
                timed(fn)
            if mode == "once":
                seconds, result = timed(fn)
            else:
                seconds, result = min((timed(fn) for _ in range(2)), key=lambda r: r[0])
            rows.append(_row(name, n_rows, batch_size, count(result), seconds))
        except Exception as exc:  # record the failure, keep measuring
            rows.append({"setting": name, "rows": n_rows, "batch": batch_size,
                         "note": f"{type(exc).__name__}: {exc}"[:300]})
        if cuda:
            torch.cuda.empty_cache()
    info["auto_batch_size"] = auto
    if cuda:
        info["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    info["seconds"] = time.perf_counter() - start
    return info, rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--model", default="tiny", help="'tiny' (default) or a model folder/hub name for the CPU rows")
    parser.add_argument("--new-tokens", type=int, default=64, help="new tokens per CPU sample (default 64)")
    parser.add_argument("--repeat", type=int, default=3, help="CPU timing repeats, best kept (default 3)")
    parser.add_argument("--gpu-budget", type=float, default=150.0, help="stop starting GPU rows after this many s")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the CPU rows (default 1: "
                        "a model this small runs fastest on one, and the machine may be shared)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the GPU rows")
    parser.add_argument("--smoke-gpu-rows", action="store_true",
                        help="run the GPU rows' code on CPU with a tiny CodeGen (checks the script, not speed)")
    args = parser.parse_args(argv)

    import torch
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__}
    if not args.skip_cpu:
        torch.set_num_threads(max(1, args.threads))
        load_before = os.getloadavg()[0]
        policy, description, fallback = cpu_policy(args.model)
        params = sum(p.numel() for p in policy.model.parameters())
        rows = cpu_rows(policy, args.new_tokens, args.repeat)
        out["cpu"] = {"model": description, "fallback": fallback, "params": params,
                      "threads": torch.get_num_threads(), "temperature": 0.8, "rows": rows,
                      "load_average": [load_before, os.getloadavg()[0]], "cpu_count": os.cpu_count()}
        print_table(f"CPU, {description}, {params / 1e6:.2f}M parameters, {torch.get_num_threads()} threads, "
                    f"T=0.8, up to {args.new_tokens} new tokens (best of {args.repeat})",
                    HEADER, [[r["setting"], r["rows"], r["batch"], r["new_tokens"], r["seconds"],
                              r["new_tokens_per_s"], r["samples_per_s"]] for r in rows], digits=2)
        one, batch = rows[0]["new_tokens_per_s"], rows[1]["new_tokens_per_s"]
        print(f"batching 16 prompts: {batch / one:.1f}x the new tokens/s of one prompt at a time "
              f"(load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        out["cpu"]["batching_speedup"] = batch / one
    if torch.cuda.is_available() or args.smoke_gpu_rows:
        if args.smoke_gpu_rows:
            info, rows = gpu_rows(args.gpu_budget, device="cpu", shape="smoke", batch=4, prompt_tokens=8,
                                  new_tokens=8)
        else:
            info, rows = gpu_rows(args.gpu_budget)
        out["gpu"] = {**info, "rows": rows}
        print_table(f"{info['device']}, random CodeGen {info['shape']} shape ({info['params'] / 1e6:.0f}M), "
                    f"{info['dtype']}, "
                    f"prompt {info['prompt_tokens']} + {info['new_tokens']} new tokens, T=0.8",
                    HEADER + ["note"], [[r["setting"], r["rows"], r["batch"], r.get("new_tokens"), r.get("seconds"),
                                         r.get("new_tokens_per_s"), r.get("samples_per_s"), r.get("note", "")]
                                        for r in rows], digits=2)
        speed = {r["setting"]: r.get("new_tokens_per_s") for r in rows}
        ratios = {
            "static_over_dynamic_bare": ("bare generate, static cache", "bare generate, dynamic cache"),
            "static_over_dynamic_policy": ("Policy.sample (HumanEval stops), static cache",
                                           "Policy.sample (HumanEval stops), dynamic cache"),
            "policy_over_bare_dynamic": ("Policy.sample (HumanEval stops), dynamic cache",
                                         "bare generate, dynamic cache"),
            "policy_over_bare_static": ("Policy.sample (HumanEval stops), static cache", "bare generate, static cache"),
        }
        out["gpu"]["ratios"] = {k: speed[a] / speed[b] if speed.get(a) and speed.get(b) else None
                                for k, (a, b) in ratios.items()}
        print("ratios of new tokens/s: " + ", ".join(f"{k} {v:.2f}" if v else f"{k} -"
                                                     for k, v in out["gpu"]["ratios"].items()))
    else:
        out["gpu"] = {"device": None, "note": "no GPU", "rows": []}
        print_table("GPU, random CodeGen-350M shape, bf16", ["setting", "result"],
                    [["dynamic cache", "no GPU"], ["static cache", "no GPU"]])
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
