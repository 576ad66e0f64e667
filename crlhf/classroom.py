"""``crlhf classroom``: serve the annotation app to a class with Voila (one kernel per student).

    crlhf classroom --db labels.db [--port 8866] [--ip 127.0.0.1] [--password PW | --token TOKEN]
                    [--n-gold 5] [--no-feedback] [--active] [--round ID] [--max-annotators N]
                    [--require-all]

The server binds to 127.0.0.1 unless ``--ip`` says otherwise (``--ip 0.0.0.0`` for a lab
network) and is protected by a token (made up unless given) or, with ``--password``, by a
password form. It prints the URL to hand out. Each student's page gets its own kernel running
``widgets.classroom.ClassroomApp`` on the same store: students enter a name (registered in the
store; a name already taken is refused) and label their queue, gold programs first, then the
programs of the store's newest round (``--round`` pins one): when the RL loop opens its next
round, a student who is waiting gets it on the same page, without a reload. The page loads
nothing from outside the server (:data:`TEMPLATE`: Voila's lab template without its CDN links).
The instructor opens ``notebooks/04_classroom_dashboard.ipynb`` with ``CRLHF_CLASSROOM_DB`` set
to the same store (or ``CrowdDashboard(LabelStore(...))`` in any notebook).

``--db`` takes a SQLite path (created if missing, WAL mode) or a database URL
(``postgresql+psycopg://...``) for a class beyond one machine. This module imports Voila and
the widgets lazily: ``import crlhf`` stays light.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
from pathlib import Path

__all__ = ["build_parser", "run", "main", "write_template", "ENV_DB", "ENV_OPTIONS", "DEFAULT_PORT"]

ENV_DB = "CRLHF_CLASSROOM_DB"
ENV_OPTIONS = "CRLHF_CLASSROOM_OPTIONS"
DEFAULT_PORT = 8866

APP_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
               "source": ["from widgets.classroom import ClassroomApp\n", "\n", "ClassroomApp.from_env()"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}

# Voila's lab template links Font Awesome from a CDN (cdn.jsdelivr.net), which a lab without
# internet cannot reach and which Voila's own bundle already carries: this template is the lab
# template without links to other hosts, so the page loads nothing from outside the server.
TEMPLATE = "crlhf-classroom"
TEMPLATE_FILES = {
    "conf.json": json.dumps({"base_template": "lab"}),
    "index.html.j2": (
        "{%- extends 'lab/index.html.j2' -%}\n"
        "{%- block notebook_css -%}\n"
        "{%- for line in super().split('\\n') if not ('<link' in line and '://' in line) %}\n"
        "{{ line }}\n"
        "{%- endfor %}\n"
        "{%- endblock notebook_css -%}\n"),
}


def write_template(folder: Path) -> Path:
    """Write :data:`TEMPLATE` under ``folder`` as a Jupyter data directory (for ``JUPYTER_PATH``)."""
    where = folder / "voila" / "templates" / TEMPLATE
    where.mkdir(parents=True, exist_ok=True)
    for name, text in TEMPLATE_FILES.items():
        (where / name).write_text(text)
    return folder


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The arguments of ``crlhf classroom`` (added to ``parser`` if given, e.g. a subparser)."""
    p = parser or argparse.ArgumentParser(prog="crlhf classroom", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True, help="the label store: a SQLite file path or a database URL")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for the network)")
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--password", help="protect the app with this password (a login form) instead of a token")
    auth.add_argument("--token", help="the access token in the URL (default: a random one)")
    p.add_argument("--n-gold", type=int, default=5, help="gold programs each student labels first (default 5)")
    p.add_argument("--no-feedback", action="store_true", help="do not show the truth of gold programs after a submit")
    p.add_argument("--active", action="store_true", help="route students to the least certain programs")
    p.add_argument("--round", type=int, dest="round_id",
                   help="only programs of this round (default: follow the store's newest round as the loop opens "
                        "them; every program while there is no round)")
    p.add_argument("--max-annotators", type=int, help="stop serving a program once this many have labelled it")
    p.add_argument("--require-all", action="store_true", help="every line needs a label before a submit")
    return p


def _session_options(args) -> dict:
    from .store import NEWEST

    return {"n_gold": args.n_gold, "feedback": not args.no_feedback, "active": args.active,
            "round_id": NEWEST if args.round_id is None else args.round_id, "max_annotators": args.max_annotators,
            "require_all": args.require_all}


def _hosts(ip: str) -> list[str]:
    if ip not in ("", "0.0.0.0", "::"):
        return [ip]
    hosts = [socket.gethostname()]
    try:
        hosts += sorted({str(a[4][0]) for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
                        - {"127.0.0.1"})
    except OSError:
        pass
    return hosts


def _missing_extra(exc: ImportError) -> str:
    """What to install when the server or the app it serves cannot be imported."""
    if (exc.name or "").split(".")[0] == "widgets":
        return "crlhf classroom needs the `widgets` package that comes with crlhf (pip install -e . in the repository)"
    return (f"crlhf classroom needs the notebook extra (voila, ipywidgets, anywidget): "
            f"pip install 'crlhf[notebook]' ({exc})")


def run(args: argparse.Namespace) -> int:
    """Start the Voila server for parsed ``args`` (see :func:`build_parser`); blocks until stopped."""
    from .store import LabelStore, database_url

    url = database_url(args.db)  # a path becomes an absolute SQLite URL, the same for every kernel
    store = LabelStore(url)  # creates the tables in a new store; fails early on a bad URL
    progs, names = store.programs(), store.annotators()
    store.close()
    n_gold = int(progs["gold"].sum()) if len(progs) else 0

    try:
        from jupyter_server.auth import passwd
        from traitlets.config import Config
        from voila.app import Voila

        import widgets.classroom  # the app every kernel runs: a missing widget library fails here, once
    except ImportError as exc:
        print(_missing_extra(exc), file=sys.stderr)
        return 2

    folder = Path(tempfile.mkdtemp(prefix="crlhf-classroom-"))
    atexit.register(shutil.rmtree, folder, True)
    notebook = folder / "classroom.ipynb"
    notebook.write_text(json.dumps(APP_NOTEBOOK, indent=1))
    os.environ[ENV_DB] = url
    os.environ[ENV_OPTIONS] = json.dumps(_session_options(args))
    source_root = str(Path(widgets.classroom.__file__).resolve().parents[1])  # kernels import this very code
    os.environ["PYTHONPATH"] = os.pathsep.join([source_root, *filter(None, [os.environ.get("PYTHONPATH")])])
    data_dir = write_template(folder / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(data_dir), *filter(None, [os.environ.get("JUPYTER_PATH")])])

    token = "" if args.password else (args.token or secrets.token_urlsafe(24))
    c = Config()
    c.Voila.ip = args.ip
    c.Voila.port = int(args.port)
    c.Voila.port_retries = 0
    c.Voila.open_browser = False
    c.Voila.token = token
    c.Voila.root_dir = str(folder)
    c.VoilaConfiguration.show_tracebacks = False
    c.VoilaConfiguration.template = TEMPLATE
    if args.password:
        c.PasswordIdentityProvider.hashed_password = passwd(args.password)
    app = Voila(config=c)
    app.initialize([str(notebook)])

    query = f"?token={token}" if token else ""
    print(f"crlhf classroom: {len(progs)} programs ({n_gold} gold) and {len(names)} annotators in "
          f"{LabelStore.__name__}({_redact(url)!r})")
    for host in _hosts(args.ip):
        print(f"Students open: http://{host}:{args.port}/{query}")
    if args.password:
        print("Access is by the password given with --password.")
    print(f"Instructor: {ENV_DB}={_redact(url)} jupyter lab notebooks/04_classroom_dashboard.ipynb")
    print("Stop with Ctrl-C.", flush=True)
    try:
        app.start()
    except KeyboardInterrupt:
        pass
    return 0


def _redact(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m crlhf.classroom --db labels.db`` (what ``crlhf classroom`` runs)."""
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
