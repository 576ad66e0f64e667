"""``python -m crlhf``: the ``crlhf`` command (also what ``accelerate launch -m crlhf`` runs)."""

from .cli import main

raise SystemExit(main())
