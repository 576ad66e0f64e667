"""The embedded default coder (DESIGN.md §3): tokenizer, config, SFT recipe, packaged checkpoint.

No model hub is reachable on a fresh machine, so the kit ships a small GPT-2-shaped coder
trained by its own recipe on ``minicode``'s train split:

* ``build_tokenizer``: a byte-level BPE (``tokenizers``) trained on minicode prompts and
  references plus some Python text (a few standard-library modules read from disk). Every
  newline is its own token, so a prompt that ends in ``"\\n"`` tokenizes as a prefix of
  prompt + completion (SFT and sampling see the same tokens). Text round-trips exactly.
* ``build_config``: a ``GPT2Config`` of about a million parameters.
* ``train``: SFT with TRL's ``SFTTrainer`` on prompt-completion pairs (loss on the completion
  only, EOS appended), seeded, on CPU in a few minutes, with progress bars.
* ``load``: the packaged checkpoint (``crlhf/tiny_model``) as a ready ``crlhf.policy.Policy``.

The recipe's defaults (``Recipe``: 6,000 train tasks, 2 epochs, 4 layers x 128 wide, 957k
parameters, 3.8 MB) were chosen so that the coder solves some but not all of minicode's
held-out test tasks, leaving room for crowd RLHF: ``benchmarks/tiny_passk.py`` measured pass@1
0.32 at T=0.2 and pass@10 0.60 at T=0.6 on 200 test tasks. Training twice as long (8,000
tasks, 3 epochs, no dropout) reached pass@1 0.60 and pass@10 only 0.72 on 100 tasks: whole task
kinds solved or failed outright, little left for sampling or RLHF to find. The checkpoint's
typical slips are line-level (a wrong constant or character copied from the docstring, a
misread held-out wording), the kind of error line annotators can mark.
``crlhf tiny train --out DIR`` reproduces the checkpoint (byte-identical on this machine).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["MODEL_DIR", "PYTHON_TEXT_MODULES", "Recipe", "python_text", "sft_pairs", "build_tokenizer", "build_config",
           "train", "load", "build_parser", "run"]

MODEL_DIR = Path(__file__).with_name("tiny_model")
EOS = "<|endoftext|>"
PAD = "<|pad|>"
PYTHON_TEXT_MODULES = ("bisect", "heapq", "textwrap", "fnmatch", "colorsys", "statistics", "string")
"""Standard-library modules whose source is the tokenizer's generic Python text."""


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the tiny coder: data, tokenizer, model shape, optimisation."""

    n_tasks: int = 6000          # minicode train tasks (split "train", seed ``data_seed``)
    data_seed: int = 0
    epochs: float = 2.0
    vocab_size: int = 1024
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 256
    dropout: float = 0.1
    learning_rate: float = 2e-3
    batch_size: int = 32
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    seed: int = 0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Recipe.{f.name} must be a number, got {value!r}")
        for name in ("n_tasks", "vocab_size", "n_layer", "n_embd", "n_head", "n_positions", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Recipe.{name} must be a positive int, got {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"Recipe.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.vocab_size < 300:
            raise ValueError(f"Recipe.vocab_size must be >= 300 (256 bytes + specials), got {self.vocab_size}")
        if not self.epochs > 0 or not self.learning_rate > 0:
            raise ValueError("Recipe.epochs and Recipe.learning_rate must be > 0")
        if not 0 <= self.dropout < 1 or not 0 <= self.warmup_ratio < 1 or self.weight_decay < 0:
            raise ValueError("Recipe.dropout and warmup_ratio must be in [0, 1), weight_decay >= 0")


def python_text(modules=PYTHON_TEXT_MODULES) -> list[str]:
    """Source text of a few standard-library modules (generic Python for the tokenizer)."""
    import importlib

    texts = []
    for name in modules:
        try:
            texts.append(inspect.getsource(importlib.import_module(name)))
        except (ImportError, OSError, TypeError):  # a stripped install without sources
            continue
    return texts


def sft_pairs(n_tasks: int, seed: int = 0, progress: bool = True) -> list[dict]:
    """``{"prompt", "completion"}`` pairs: the first ``n_tasks`` minicode train tasks and their references."""
    from tqdm.auto import tqdm

    from .tasks.minicode import make_task

    pairs = []
    for i in tqdm(range(n_tasks), desc="minicode train tasks", disable=not progress, mininterval=1.0):
        task = make_task(seed, "train", i)
        pairs.append({"prompt": task.prompt, "completion": task.reference})
    return pairs


def build_tokenizer(texts, vocab_size: int = 1024, max_length: int = 256, progress: bool = True):
    """A byte-level BPE trained on ``texts``, wrapped as ``PreTrainedTokenizerFast``.

    Newlines are isolated before the byte-level split, so no token spans a line break; EOS is
    ``<|endoftext|>`` (also BOS), padding is ``<|pad|>`` on the left.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD], show_progress=progress,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   padding_side="left", clean_up_tokenization_spaces=False,
                                   model_max_length=max_length)


def build_config(tokenizer, recipe: Recipe = Recipe()):
    """The ``GPT2Config`` of the tiny coder for ``tokenizer`` (tied input/output embeddings)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=len(tokenizer), n_positions=recipe.n_positions, n_embd=recipe.n_embd,
                      n_layer=recipe.n_layer, n_head=recipe.n_head, resid_pdrop=recipe.dropout,
                      embd_pdrop=recipe.dropout, attn_pdrop=recipe.dropout,
                      bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)


def _threads(threads: int | None) -> int:
    return max(1, int(threads)) if threads else 1


def train(out_dir: str | os.PathLike, recipe: Recipe | None = None, *, threads: int | None = None,
          max_steps: int | None = None, progress: bool = True, **overrides) -> Path:
    """Train the tiny coder from scratch and save it (safetensors, tokenizer, config) to ``out_dir``.

    ``recipe`` (or keyword ``overrides`` of its fields, e.g. ``n_tasks=200``) fixes data, model
    and optimisation; ``max_steps`` cuts training short (for tests). ``threads`` is torch's
    intra-op thread count (default 1: on 2 shared cores 1 thread ran 1.9 steps/s, 2 threads 1.4).
    Writes ``recipe.json`` with the recipe, versions, timings and the machine's load. Returns
    ``out_dir``. With the default recipe and one thread the files are byte-identical from run to
    run on one machine (the tokenizer also reads the standard library's source, which differs
    between Python versions).
    """
    recipe = Recipe(**{**asdict(recipe or Recipe()), **overrides})
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    out_dir = Path(out_dir)
    start = time.perf_counter()

    import torch
    import transformers
    from datasets import Dataset
    from transformers import GPT2LMHeadModel, set_seed
    from trl import SFTConfig, SFTTrainer  # slow to import: only here

    n_threads = _threads(threads)
    torch.set_num_threads(n_threads)
    set_seed(recipe.seed)
    pairs = sft_pairs(recipe.n_tasks, recipe.data_seed, progress=progress)
    texts = [p["prompt"] + p["completion"] for p in pairs] + python_text()
    tokenizer = build_tokenizer(texts, recipe.vocab_size, recipe.n_positions, progress=progress)
    model = GPT2LMHeadModel(build_config(tokenizer, recipe))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    prepared = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="crlhf-tiny-") as scratch:
        config = SFTConfig(
            output_dir=scratch, num_train_epochs=recipe.epochs, max_steps=max_steps or -1,
            per_device_train_batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
            lr_scheduler_type="cosine", warmup_steps=recipe.warmup_ratio, weight_decay=recipe.weight_decay,
            max_length=recipe.n_positions, completion_only_loss=True, seed=recipe.seed,
            data_seed=recipe.seed, bf16=False, fp16=False, use_cpu=True, save_strategy="no",
            report_to="none", logging_steps=50, disable_tqdm=not progress, dataloader_num_workers=0,
            dataset_num_proc=None, activation_checkpointing=False,  # TRL turns it on by default
        )
        trainer = SFTTrainer(model=model, args=config, processing_class=tokenizer,
                             train_dataset=Dataset.from_list(pairs))
        result = trainer.train()
    trained = time.perf_counter()

    assert isinstance(trainer.model, type(model))  # SFTTrainer trains the model it was given
    model = trainer.model.cpu().eval()
    model.config.use_cache = True  # the trainer turns the KV cache off; sampling wants it
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    _portable_tokenizer_config(out_dir)
    info = {
        "recipe": asdict(recipe), "max_steps": max_steps, "threads": n_threads,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "steps": int(result.global_step), "train_loss": float(result.training_loss),
        "seconds": {"prepare": round(prepared - start, 1), "train": round(trained - prepared, 1),
                    "total": round(time.perf_counter() - start, 1)},
        "machine": {"cpus": os.cpu_count(), "load_average_1min_at_end": _load_average()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "trl": _version("trl"),
                     "tokenizers": _version("tokenizers")},
    }
    (out_dir / "recipe.json").write_text(json.dumps(info, indent=1) + "\n")
    return out_dir


def _portable_tokenizer_config(folder: Path) -> None:
    """Name the tokenizer class ``PreTrainedTokenizerFast`` (transformers 5 writes its new alias
    ``TokenizersBackend``, which transformers 4 cannot load)."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def load(path: str | os.PathLike | None = None, device=None):
    """The tiny coder (the packaged checkpoint unless ``path``) as a ready ``crlhf.policy.Policy``."""
    from .policy import Policy, hf_progress_bars_off

    path = Path(path) if path is not None else MODEL_DIR
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no tiny-coder checkpoint at {path} (run `crlhf tiny train --out {path}`)")
    with hf_progress_bars_off():
        return Policy.from_pretrained(str(path), device=device)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``crlhf tiny`` command (added to ``parser`` if given, e.g. a subparser) and its one
    subcommand, ``train``."""
    parser = parser or argparse.ArgumentParser(prog="crlhf tiny")
    parser.description = "The embedded tiny coder: a small GPT-2 trained on minicode, packaged with crlhf."
    sub = parser.add_subparsers(dest="tiny_command", required=True, metavar="COMMAND")
    _add_train_arguments(sub.add_parser("train", help="train the tiny coder from scratch",
                                        description="Train the embedded tiny coder from scratch (minicode SFT)."))
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``crlhf tiny train`` from options parsed by :func:`build_parser`: train, print where
    the checkpoint went; returns the exit status."""
    recipe = Recipe(**{f.name: getattr(args, f.name) for f in fields(Recipe)})
    out = train(args.out, recipe, threads=args.threads, max_steps=args.max_steps, progress=not args.quiet)
    info = json.loads((out / "recipe.json").read_text())
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"tiny coder: {info['parameters']:,} parameters, {info['steps']} steps, loss {info['train_loss']:.3f}, "
          f"{info['seconds']['total']:.0f} s; {size / 2**20:.1f} MiB in {out} "
          f"(load it with crlhf.tiny.load({str(out)!r}))")
    return 0


def _add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``crlhf tiny train``: ``--out``, one ``--field`` per ``Recipe`` field, ``--threads``,
    ``--max-steps``, ``--quiet``. Returns ``parser``."""
    parser.add_argument("--out", type=Path, default=Path("tiny-coder"),
                        help="output folder (default ./tiny-coder; the packaged checkpoint is crlhf/tiny_model)")
    defaults = Recipe()
    for f in fields(Recipe):
        value = getattr(defaults, f.name)
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(value), default=value,
                            help=f"recipe: {f.name} (default {value})")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, the fastest measured on 2 cores)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


