"""crlhf: crowd-sourced RLHF for code generation.

Line labels from annotators of unknown reliability are combined by Bayesian inference
(``crlhf.bayes``, ``crlhf.crowd``) into a score per program, the reward for PPO.
Importing ``crlhf`` needs numpy only; heavier parts are imported by their modules.
"""

__version__ = "0.1.0"
