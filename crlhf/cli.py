"""The ``crlhf`` command: parses the command line and hands it to the command's module.

Each command is a pair of functions in its own module (:data:`COMMANDS`):
``build_parser(parser)`` adds the command's description and options to ``parser`` (every
option with a plain-text ``help``) and returns it, and ``run(args) -> int`` runs the command
from the parsed options and returns the exit status. A bad input found after parsing raises
:class:`CommandError`; the command line prints it as ``crlhf COMMAND: error: ...`` and exits
with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["DESCRIPTION", "COMMANDS", "Command", "CommandError", "commands", "build_parser", "main"]

DESCRIPTION = ("crlhf: crowd-sourced RLHF for code generation. A code model writes programs, a crowd "
               "labels each line correct or wrong, Bayesian inference with learned annotator reliabilities "
               "p_i turns the labels into a score per program, and PPO trains on the scores. "
               "Run 'crlhf COMMAND --help' for a command's options.")

COMMANDS = {
    "demo": ("demo", "the main job: evaluate the tiny coder, run cRLHF with a simulated crowd, evaluate again, "
                     "write a report"),
    "crowd": ("crowd_sim", "simulate a crowd: calibration, labels, posteriors, p_i"),
    "eval": ("eval_run", "pass@k of a model on HumanEval/MBPP (Table I), resumable"),
    "round": ("round_cmd", "put a round of sampled programs (and gold) into a class's label store, for crlhf "
                           "classroom"),
    "sft": ("sft", "fine-tune a causal LM on text-to-code pairs"),
    "train": ("train_cmd", "the paper's experiment from a TOML config: SFT, baseline, cRLHF rounds, evaluation "
                           "after, report (resumable)"),
    "classroom": ("classroom", "serve the annotation app to a class (Voila)"),
    "tiny": ("tiny", "the embedded tiny coder"),
}
"""Command name -> (module of ``crlhf`` that holds it, the one line ``crlhf --help`` shows)."""


class CommandError(Exception):
    """A bad input to a command, found after its options were parsed; the message names the
    option, field or file at fault."""


class Command(NamedTuple):
    """One command: its module's two functions and its line in ``crlhf --help``."""

    build_parser: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]
    help: str


def commands() -> dict[str, Command]:
    """:data:`COMMANDS` with each module's ``build_parser`` and ``run`` (modules are imported here)."""
    import importlib

    out = {}
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        out[name] = Command(module.build_parser, module.run, help_text)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``crlhf`` parser: one subparser per command (its description, unless the command
    sets one, the command's line of :data:`COMMANDS`), which keeps the command's ``run`` (``_run``)
    and itself (``_parser``) in the parsed options."""
    parser = argparse.ArgumentParser(prog="crlhf", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands().items():
        p = command.build_parser(sub.add_parser(name, help=command.help, description=command.help))
        p.set_defaults(_run=command.run, _parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``crlhf``: parse ``argv`` (default ``sys.argv[1:]``) and run the command; returns its exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return args._run(args)
    except CommandError as exc:
        parser: argparse.ArgumentParser = args._parser
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
