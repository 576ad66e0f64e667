"""Supervised fine-tuning of any causal LM on text-to-code pairs (``crlhf sft``), with TRL.

Data: the XLCoST layouts that :func:`crlhf.tasks.load_xlcost` reads (a folder of the original
release or of the Hub dataset's files), or a JSON-lines file with string fields ``text`` and
``code`` (code given as XLCoST tokens with ``NEW_LINE``/``INDENT``/``DEDENT`` is detokenized,
plain code is kept as is). Each pair becomes a prompt-completion example: prompt ``"# text\\n"``,
completion the code (TRL appends the end-of-sequence token), so the loss is on the code only.

The fine-tuned model and tokenizer are written to ``--out`` and load with
``Policy.from_pretrained(out)``. ``trl`` is imported only when training starts (~10 s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .tasks.base import TaskFormatError
from .tasks.xlcost import detokenize, load_xlcost

__all__ = ["load_pairs", "SFTResult", "sft", "build_parser", "run"]

_XLCOST_TOKENS = re.compile(r"\b(NEW_LINE|INDENT|DEDENT)\b")


def load_pairs(path: str | os.PathLike, split: str = "train", language: str = "Python",
               limit: int | None = None) -> list[dict]:
    """Text-to-code pairs as ``{"prompt": "# text\\n", "completion": code}`` records.

    Raises ``FileNotFoundError`` for a missing path and :class:`~crlhf.tasks.TaskFormatError`
    (naming the file, the line and the field) for a malformed or empty file.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"SFT data {str(p)!r} does not exist")
    if p.is_file() and not p.read_text(encoding="utf-8", errors="replace").strip():
        raise TaskFormatError(p, None, None, "empty: expected JSON lines with string fields 'text' and 'code'")
    if p.is_dir():
        tasks = load_xlcost(p, split=split, language=language, detokenize_code=True, limit=limit)
    else:
        tasks = load_xlcost(p, split=split, language=language, detokenize_code=False, limit=limit)
    pairs = []
    for task in tasks:
        code = task.reference
        if _XLCOST_TOKENS.search(code) and "\n" not in code.rstrip("\n"):
            code = detokenize(code)
        pairs.append({"prompt": task.prompt, "completion": code})
    return pairs


@dataclass
class SFTResult:
    """What a run produced: the output folder, losses logged during training, and timings."""

    out: Path
    examples: int
    steps: int
    seconds: float
    train_loss: float
    losses: list[float] = field(default_factory=list)
    eval_loss: float | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "out": str(self.out)}


def sft(model, data: str | os.PathLike, out: str | os.PathLike = "runs/sft", *, epochs: float = 3.0,
        lr: float = 5e-5, max_steps: int = -1, batch_size: int = 8, grad_accum: int = 1, max_length: int = 512,
        warmup: float = 0.0, weight_decay: float = 0.0, split: str = "train", language: str = "Python",
        limit: int | None = None, eval_data: str | os.PathLike | None = None, seed: int = 0,
        device: str | None = None, logging_steps: int = 10, checkpointing: bool = True,
        progress: bool = True) -> SFTResult:
    """Fine-tune ``model`` (a hub name, a local folder or a :class:`~crlhf.policy.Policy`) on the
    text-to-code pairs in ``data`` with TRL's ``SFTTrainer``, loss on the code only; save the
    model and tokenizer to ``out``.

    ``max_steps > 0`` overrides ``epochs``; ``warmup`` is a number of steps, or a fraction of
    them when below 1. Weights are trained in float32 (a ``Policy`` passed in is trained in place
    and converted), under bf16 autocast on GPUs that support it. ``checkpointing`` (TRL's default)
    recomputes activations in the backward pass: less memory, about a third more compute.
    """
    limits = {"epochs": (epochs, 0, True), "lr": (lr, 0, True), "batch_size": (batch_size, 1, False),
              "grad_accum": (grad_accum, 1, False), "max_length": (max_length, 8, False),
              "logging_steps": (logging_steps, 1, False), "warmup": (warmup, 0, False)}
    for name, (value, low, strict) in limits.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < low or (strict and value == low):
            raise ValueError(f"{name} must be a number {'>' if strict else '>='} {low}, got {value!r}")
    if max_steps != -1 and not (isinstance(max_steps, int) and max_steps >= 1):
        raise ValueError(f"max_steps must be -1 (no limit) or >= 1, got {max_steps!r}")
    train_pairs = load_pairs(data, split=split, language=language, limit=limit)
    eval_pairs = None
    if eval_data is not None:
        eval_split = "validation" if Path(eval_data).is_dir() else split
        eval_pairs = load_pairs(eval_data, split=eval_split, language=language, limit=limit)

    import torch

    from .policy import Policy

    if isinstance(model, Policy):
        policy = model
    else:
        policy = Policy.from_pretrained(model, device=device, dtype=torch.float32)
    on_cpu = policy.device.type == "cpu"
    bf16 = policy.device.type == "cuda" and torch.cuda.is_bf16_supported()
    if policy.model.dtype != torch.float32:
        policy.model.float()

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = SFTConfig(
        output_dir=str(out), num_train_epochs=float(epochs), max_steps=int(max_steps), learning_rate=float(lr),
        per_device_train_batch_size=int(batch_size), per_device_eval_batch_size=int(batch_size),
        gradient_accumulation_steps=int(grad_accum), max_length=int(max_length),
        warmup_steps=warmup if warmup < 1 else int(warmup), weight_decay=weight_decay,
        logging_steps=int(logging_steps), save_strategy="no", report_to="none",
        completion_only_loss=True, bf16=bf16, use_cpu=on_cpu, seed=int(seed), data_seed=int(seed),
        disable_tqdm=not progress, dataloader_num_workers=0, dataset_num_proc=None,
        activation_checkpointing=bool(checkpointing),
    )
    policy.tokenizer.padding_side = "right"  # TRL pads batches itself; restored below for sampling
    try:
        trainer = SFTTrainer(model=policy.model, args=config, processing_class=policy.tokenizer,
                             train_dataset=Dataset.from_list(train_pairs),
                             eval_dataset=Dataset.from_list(eval_pairs) if eval_pairs else None)
        start = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - start
        eval_loss = float(trainer.evaluate()["eval_loss"]) if eval_pairs else None
    finally:
        policy.tokenizer.padding_side = "left"
    policy.model = trainer.model
    policy.model.eval()
    trainer.save_model(str(out))
    policy.tokenizer.save_pretrained(out)
    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    result = SFTResult(out=out, examples=len(train_pairs), steps=int(output.global_step), seconds=seconds,
                       train_loss=float(output.training_loss), losses=losses, eval_loss=eval_loss)
    (out / "sft_result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``crlhf sft`` (added to ``parser`` if given, e.g. a subparser)."""
    parser = parser or argparse.ArgumentParser(prog="crlhf sft")
    parser.description = "Fine-tune a causal LM on text-to-code pairs (XLCoST or JSON lines), with TRL."
    parser.add_argument("--model", required=True, help="hub name or local folder of a causal LM "
                        "(e.g. Salesforce/codegen-350M-multi, or a folder written by `crlhf tiny train`)")
    parser.add_argument("--data", required=True, help="XLCoST folder, or JSON lines with 'text' and 'code'")
    parser.add_argument("--out", default="runs/sft", help="output folder for the model (default runs/sft)")
    parser.add_argument("--epochs", type=float, default=3.0, help="training epochs (default 3)")
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps "
                        "(overrides --epochs; default: no limit)")
    parser.add_argument("--batch-size", type=int, default=8, help="examples per device step (default 8)")
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default 1)")
    parser.add_argument("--max-length", type=int, default=512,
                        help="truncate prompt+code to this many tokens (default 512)")
    parser.add_argument("--warmup", type=float, default=0.0, help="LR warm-up: steps, or a fraction of all "
                        "steps when below 1 (default 0)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    parser.add_argument("--split", default="train", help="XLCoST split for a folder (default train)")
    parser.add_argument("--language", default="Python", help="XLCoST language for a folder (default Python)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    parser.add_argument("--eval-data", default=None, help="held-out pairs (same formats; a folder's "
                        "validation split) for an eval loss at the end")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data order and initialisation (default 0)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--logging-steps", type=int, default=10, help="log the loss every N steps")
    parser.add_argument("--no-activation-checkpointing", dest="checkpointing", action="store_false",
                        help="keep activations instead of recomputing them (faster, more memory)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``crlhf sft`` from options parsed by :func:`build_parser`, print a summary; returns the
    exit status. Missing or malformed data raises :class:`crlhf.cli.CommandError`."""
    from .cli import CommandError

    try:
        result = sft(args.model, args.data, args.out, epochs=args.epochs, lr=args.lr, max_steps=args.max_steps,
                     batch_size=args.batch_size, grad_accum=args.grad_accum, max_length=args.max_length,
                     warmup=args.warmup, weight_decay=args.weight_decay, split=args.split,
                     language=args.language, limit=args.limit, eval_data=args.eval_data, seed=args.seed,
                     device=args.device, logging_steps=args.logging_steps, checkpointing=args.checkpointing)
    except (FileNotFoundError, TaskFormatError, ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    first = f"{result.losses[0]:.4f} -> " if result.losses else ""
    print(f"SFT on {result.examples} pairs: {result.steps} steps in {result.seconds:.1f} s, "
          f"loss {first}{result.losses[-1] if result.losses else result.train_loss:.4f}"
          + (f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else "")
          + f"\nmodel saved to {result.out} (load it with crlhf.policy.Policy.from_pretrained)")
    return 0
