"""The classroom app without a browser: sign up, a name taken, continuing with a code, and the
settings that the server passes to every kernel."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crlhf import classroom
from crlhf.store import database_url
from widgets.classroom import ClassroomApp
from widgets.session import AnnotationSession


def test_sign_up_label_and_names_cannot_be_taken(store):
    app = ClassroomApp(store, n_gold=1, feedback=False)
    assert app.children == (app.form,)
    assert not app.sign_up("   ") and "enter your name" in app.status.value
    app.name.value = "alice"
    app.start_button.click()  # what the button's front end does
    assert isinstance(app.session, AnnotationSession) and app.session.annotator == "alice"
    token = app.session.token
    assert token in app.children[0].value  # her code, on her own page
    ann = app.session.line_annotator
    assert ann.program_id == "g0" and ann.autofocus
    ann.press("c", "c", "w", "Enter")
    assert ann.program_id == "p0"  # feedback=False: straight on

    other = ClassroomApp(store)
    assert not other.sign_up("alice")  # a second student cannot take her name
    assert "is taken" in other.status.value and other.session is None
    assert not other.sign_in("guess")
    assert "not known" in other.status.value
    back = ClassroomApp(store, n_gold=1)
    back.code.value = token
    back.continue_button.click()
    assert back.session.annotator == "alice" and back.session.line_annotator.program_id == "p0"
    assert "Welcome back" in back.children[0].value and token not in back.children[0].value
    assert set(store.labels()["annotator"]) == {"alice"}


def test_from_env_reads_the_servers_settings(store, monkeypatch):
    monkeypatch.setenv(classroom.ENV_DB, str(store.url))
    monkeypatch.setenv(classroom.ENV_OPTIONS, json.dumps({"n_gold": 0, "require_all": True}))
    app = ClassroomApp.from_env()
    assert app.store.url == store.url and app.session_options == {"n_gold": 0, "require_all": True}
    assert app.sign_up("bob") and app.session.line_annotator.program_id == "p0"
    monkeypatch.delenv(classroom.ENV_DB)
    with pytest.raises(RuntimeError, match="crlhf classroom"):
        ClassroomApp.from_env()
    with pytest.raises(ValueError, match="unknown session option"):
        ClassroomApp(store, colour="red")


def test_the_app_follows_the_newest_round(store):
    """What the server configures by default: a student who finished round 1 gets round 2 on
    the same page when the loop opens it."""
    store.add_task("t/1", "def f():\n")
    r1 = store.new_round("round 1")
    store.add_programs([{"program_id": "run-r1-p0-s0", "program": "a = 1\n"}], task_id="t/1", round_id=r1)
    app = ClassroomApp(store, **classroom._session_options(classroom.build_parser().parse_args(
        ["--db", "x.db", "--n-gold", "0"])))
    assert app.sign_up("dee")
    ann = app.session.line_annotator
    try:
        assert ann.header == "Program 1 · t/1 · sample 1 · round 1"
        ann.press("c", "Enter")
        assert ann.disabled and app.session.waiting
        r2 = store.new_round("round 2")
        store.add_programs([{"program_id": "run-r2-p0-s0", "program": "b = 2\n"}], task_id="t/1", round_id=r2)
        assert app.session.check_for_programs() and ann.program_id == "run-r2-p0-s0"
        assert app.children[1] is app.session  # the same page: nothing re-created
    finally:
        app.session.close()


def test_command_line_arguments():
    args = classroom.build_parser().parse_args(["--db", "x.db"])
    assert (args.port, args.ip, args.password, args.token, args.n_gold) == (8866, "127.0.0.1", None, None, 5)
    assert classroom._session_options(args) == {"n_gold": 5, "feedback": True, "active": False,
                                                "round_id": "newest", "max_annotators": None, "require_all": False}
    assert classroom._session_options(classroom.build_parser().parse_args(["--db", "x.db", "--round", "3"]))[
        "round_id"] == 3
    args = classroom.build_parser().parse_args(["--db", "x.db", "--port", "9000", "--ip", "0.0.0.0", "--password",
                                                "pw", "--no-feedback", "--active", "--max-annotators", "3"])
    assert (args.port, args.ip, args.password, args.max_annotators) == (9000, "0.0.0.0", "pw", 3)
    with pytest.raises(SystemExit):
        classroom.build_parser().parse_args(["--db", "x.db", "--password", "a", "--token", "b"])
    with pytest.raises(SystemExit):
        classroom.build_parser().parse_args([])
    assert database_url("rel.db").startswith("sqlite:////")  # the URL every kernel gets


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("hidden, says", [
    ("ipywidgets", "pip install 'crlhf[notebook]'"),
    ("voila", "pip install 'crlhf[notebook]'"),
    ("widgets", "the `widgets` package that comes with crlhf"),
])
def test_serve_names_what_to_install_when_the_app_cannot_be_imported(tmp_path, hidden, says):
    """Without the notebook extra (a module set to None in sys.modules: its import fails), the
    command says what to install and exits with 2, before any server starts."""
    code = (f"import sys; sys.modules[{hidden!r}] = None\n"
            "from crlhf import classroom\n"
            # an address no server can bind: were the check to pass, Voila would fail at once
            f"sys.exit(classroom.main(['--db', {str(tmp_path / 'labels.db')!r}, '--ip', '192.0.2.1']))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert "Students open" not in proc.stdout
