"""Real-browser tests: Debian's chromium driven by Playwright for Python (never a browser
download), against JupyterLab and the Voila classroom server started here.

The session's ``chromium`` fixture lives in ``tests/conftest.py`` (the docs site test drives the
same browser: Playwright's sync API allows one instance at a time). They run in the default
``pytest`` run and carry the ``browser`` marker (``-m browser`` selects them, ``-m "not browser"``
leaves them out). Without chromium or playwright they skip with the reason printed, or fail when
``CRLHF_REQUIRE_BROWSER=1`` (CI sets it).

Under load (a shared 2-core machine) they wait generously and poll for readiness instead of
sleeping: JupyterLab as NOTES.md describes (the same idle, connected kernel on two polls 1.5 s
apart before "Run All").
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs in a real browser (chromium + Playwright)")


def snapshot(page, name: str, folder) -> None:
    """A screenshot into ``$CRLHF_BROWSER_SHOTS`` (if set) or ``folder``: kept for a failing run."""
    out = Path(os.environ.get("CRLHF_BROWSER_SHOTS") or folder)
    out.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(out / f"{name}.png"), full_page=True, timeout=30_000)
        print(f"screenshot: {out / (name + '.png')}")
    except Exception as exc:  # a screenshot must not hide the real failure
        print(f"no screenshot ({exc})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 180, ok=(200,)) -> None:
    """Poll ``url`` until it answers with a status in ``ok`` (the server process must stay up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the server we started (it shuts its kernels down), then SIGKILL its group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def start(cmd: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def lab_server(tmp_path):
    """JupyterLab on 127.0.0.1 with a token, its own config/data/runtime/settings folders,
    update checks and news off, the app exposed to the page; the notebooks folder is a copy."""
    root = tmp_path / "root"
    root.mkdir()
    home = {k: tmp_path / k for k in ("config", "data", "runtime", "settings", "workspaces")}
    for d in home.values():
        d.mkdir()
    news = home["settings"] / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                       "checkForUpdates": False}))
    token, port = secrets.token_hex(16), free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home["config"]), JUPYTER_DATA_DIR=str(home["data"]),
               JUPYTER_RUNTIME_DIR=str(home["runtime"]), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", "--ServerApp.allow_root=True", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.user_settings_dir={home['settings']}", f"--LabApp.workspaces_dir={home['workspaces']}"]

    class Lab:
        url = f"http://127.0.0.1:{port}"

        def __init__(self):
            self.root, self.token, self.env, self.process = root, token, env, None

        def start(self, **extra_env):
            self.env.update(extra_env)
            self.log = tmp_path / "lab.log"
            self.process = start(cmd, self.env, self.log, root)
            wait_http(f"{self.url}/api/status?token={token}", self.process, self.log)

    lab = Lab()
    yield lab
    if lab.process is not None:
        try:  # the server's own shutdown stops its kernels
            req = urllib.request.Request(f"{lab.url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(req, timeout=30).close()
            lab.process.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop(lab.process)


@pytest.fixture
def classroom_server(tmp_path):
    """``python -m crlhf.classroom`` (what ``crlhf classroom`` runs) on a free port; ``start``
    takes the command-line arguments after ``--db``/``--port``."""

    class Classroom:
        def __init__(self):
            self.port, self.process, self.db = free_port(), None, tmp_path / "class.db"
            self.url = f"http://127.0.0.1:{self.port}"
            self.log = tmp_path / "classroom.log"

        def start(self, *args: str):
            env = dict(os.environ, PYTHONPATH=str(REPO), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
                       JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
            cmd = [sys.executable, "-m", "crlhf.classroom", "--db", str(self.db), "--port", str(self.port), *args]
            self.process = start(cmd, env, self.log, tmp_path)
            # the login page answers once the server listens (and starts no kernel)
            wait_http(f"{self.url}/login", self.process, self.log)
            return self.log.read_text()

    server = Classroom()
    yield server
    if server.process is not None:
        stop(server.process)


@pytest.fixture
def shoot(tmp_path):
    """``shoot(page, name)``: a screenshot (see :func:`snapshot`)."""
    return lambda page, name: snapshot(page, name, tmp_path)
