"""``python -m crlhf``: the ``crlhf`` command (also what ``accelerate launch -m crlhf`` runs)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
