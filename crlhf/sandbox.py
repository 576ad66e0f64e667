"""Isolated, parallel execution of untrusted programs, with verdicts that cannot be forged.

``check_program(program, test, entry_point=None, timeout=3.0) -> Result`` runs one sample;
``check_many(items, timeout=3.0, workers=None, progress=True)`` runs many
``(program, test, entry_point)`` triples over a pool of long-lived workers (one per core).
With ``entry_point``, ``test`` is HumanEval-style code defining ``check(candidate)``, called with
the program's function; without it, ``test`` is MBPP-style statements (asserts) run after the
program, e.g. ``test_setup_code + "\\n" + "\\n".join(test_list)``.

How a sample is run (the processes are in ``crlhf/_sandbox_worker.py``):

* The program runs in a fresh process forked from a long-lived zygote that never holds a test:
  limits on CPU time, memory, file size and open files, a clean environment, a fresh temporary
  working directory, its own process group (killed with everything in it at the deadline), no
  network (a network namespace made once per worker), fork/exec/kill/ptrace/socket blocked by
  seccomp (``pyseccomp``), and a read-only root with a private /tmp, /root and /home hidden, its
  own pid namespace and uid 65534 without capabilities (``bwrap``, Debian package
  ``bubblewrap``; as root the sample becomes the real uid 65534, so root-only files stay shut).
* The verdict is taken in the worker, a separate trusted process that never runs sample code:
  the test runs there and calls the program's functions over a socket. Only plain built-in values
  (numbers, strings, bytes, lists, tuples, dicts, sets, ranges; subclasses are converted to the
  base type) come back; anything else stays in the sample as an opaque handle that compares by
  identity, and nothing the test compares a result with is ever sent to the sample. So
  ``__eq__`` tricks, ``gc`` hunting for the verdict, patched builtins, printing "passed",
  ``sys.exit(0)``, forged protocol frames and the like cannot pass a test.
* Builtins the test uses are the checker's own (an MBPP-style test that calls only program
  functions named like builtins, such as MBPP task 126's ``sum``, gets the program's).
  Standard-library modules the program imported and the test uses (``sys``, ``math``) are the
  checker's own copies. Helpers that a HumanEval test calls besides the candidate (``poly``,
  ``encode_cyclic``) come from a second sample process that runs only the statements before the
  entry point, so a completion cannot redefine them.
* Arguments are copies: a function that mutates its argument does not change the test's object.

Layers that the machine cannot provide are reported by ``layers()`` and announced once with a
``SandboxWarning``; the split checker, limits and per-sample processes are always on.
"""

from __future__ import annotations

import json
import os
from collections import deque
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

STATUSES = ("passed", "failed", "timeout", "error")
_WORKER_SCRIPT = Path(__file__).with_name("_sandbox_worker.py")
_HEADER = struct.Struct("!Q")
_GRACE = 1.5  # seconds past the timeout before the host gives up on a worker
_START_TIMEOUT = 60.0
_DEPTH = 2  # jobs queued at a worker
_PIPELINE_BYTES = 32 << 10  # larger jobs wait for an idle worker: sending never blocks on a busy one

LAYER_DESCRIPTIONS = {
    "process_per_sample": "a fresh process per sample, forked from a long-lived zygote",
    "split_checker": "the verdict is taken in a separate trusted process",
    "rlimits": "CPU, memory, file-size and open-file limits",
    "clean_env": "a clean environment",
    "temp_dir": "a fresh temporary working directory per sample",
    "network_namespace": "no network (a network namespace per worker)",
    "seccomp": "fork, exec, kill, ptrace and sockets blocked by seccomp (pyseccomp)",
    "bwrap": "read-only filesystem, private /tmp, /root and /home hidden, own pid namespace (bwrap)",
    "unprivileged_uid": "samples run as uid 65534 (the real one when the worker is root)",
}


class SandboxWarning(RuntimeWarning):
    """An isolation layer is unavailable on this machine; samples run with the others."""


@dataclass(frozen=True)
class Result:
    """The verdict on one sample: ``passed``, ``status`` (one of ``STATUSES``), a short
    ``detail`` and the wall time in seconds."""

    passed: bool
    status: str
    detail: str = ""
    duration: float = 0.0

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.passed != (self.status == "passed"):
            raise ValueError(f"passed={self.passed} contradicts status={self.status!r}")


def _make_result(status, detail, duration=0.0):
    return Result(status == "passed", status, detail, duration)


def _frame(obj) -> bytes:
    data = json.dumps(obj).encode("ascii")
    return _HEADER.pack(len(data)) + data


def _send(sock, obj):
    sock.sendall(_frame(obj))


def _recv(sock):
    head = b""
    while len(head) < _HEADER.size:
        chunk = sock.recv(_HEADER.size - len(head))
        if not chunk:
            return None
        head += chunk
    (size,) = _HEADER.unpack(head)
    body = bytearray()
    while len(body) < size:
        chunk = sock.recv(min(size - len(body), 1 << 20))
        if not chunk:
            return None
        body += chunk
    return json.loads(body)


def _validate_item(index, item):
    if not isinstance(item, (tuple, list)) or len(item) != 3:
        raise ValueError(f"items[{index}] must be a (program, test, entry_point) triple, "
                         f"got {type(item).__name__}")
    program, test, entry_point = item
    if not isinstance(program, str):
        raise TypeError(f"items[{index}]: program must be a str, got {type(program).__name__}")
    if not isinstance(test, str):
        raise TypeError(f"items[{index}]: test must be a str, got {type(test).__name__}")
    if entry_point is not None and (not isinstance(entry_point, str)
                                    or not entry_point.isidentifier()):
        raise ValueError(f"items[{index}]: entry_point must be None or an identifier, "
                         f"got {entry_point!r}")
    return {"program": program, "test": test, "entry_point": entry_point}


def _validate_timeout(timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if timeout > 24 * 3600:
        raise ValueError(f"timeout must be at most one day, got {timeout!r}")
    return float(timeout)


class _Worker:
    """The host's handle on one worker process."""

    def __init__(self, config):
        # Scratch space for samples when bwrap is missing; owned here, so a killed worker's goes too.
        self.tmp_base = tempfile.mkdtemp(prefix="crlhf-sandbox-")
        os.chmod(self.tmp_base, 0o711)  # samples running as uid 65534 traverse it
        config = dict(config, tmp_base=self.tmp_base)
        self.config = config
        ours, theirs = socket.socketpair()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(_WORKER_SCRIPT), "worker", str(theirs.fileno()),
             json.dumps(config)],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, start_new_session=True)
        theirs.close()
        self.sock = ours
        self.queue: deque[int] = deque()  # indices of the jobs sent and not yet answered
        self.deadline: float | None = None  # for the first of them
        self.hello = None
        self.sandbox_cpu = 0.0

    def wait_hello(self):
        ready, _, _ = select.select([self.sock], [], [], _START_TIMEOUT)
        hello = _recv(self.sock) if ready else None
        if hello is None or hello.get("op") != "hello":
            self.kill()
            err = self.proc.stderr.read().decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"the sandbox worker did not start: {err or 'no output'}")
        self.proc.stderr.close()
        self.hello = hello
        return hello

    def kill(self):
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        self.proc.wait()
        self.sock.close()
        shutil.rmtree(self.tmp_base, ignore_errors=True)

    def close(self):
        """Stop the worker; record the CPU its zygotes report on the way out."""
        try:
            _send(self.sock, {"op": "exit"})
            ready, _, _ = select.select([self.sock], [], [], 3.0)
            bye = _recv(self.sock) if ready else None
            if bye is not None and bye.get("op") == "bye":
                self.sandbox_cpu = bye["sandbox_cpu"]
            self.proc.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


class Sandbox:
    """A pool of sandbox workers. ``check``/``check_many`` run samples; ``layers()`` says which
    isolation layers are active. Close it (or use ``with``) to stop the workers.

    ``workers``: processes (default: one per available core). ``memory_mb``, ``file_size_mb``,
    ``open_files``: per-sample limits. ``bwrap``: the bwrap executable, or False to go without.
    ``seccomp``, ``network_namespace``: False to switch those layers off.
    """

    def __init__(self, workers: int | None = None, *, memory_mb: int = 1024,
                 file_size_mb: int = 16, open_files: int = 64, tmpfs_mb: int = 64,
                 max_message_mb: int = 16, bwrap: str | bool = "bwrap", seccomp: bool = True,
                 network_namespace: bool = True):
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        for name, value in (("memory_mb", memory_mb), ("file_size_mb", file_size_mb),
                            ("open_files", open_files), ("tmpfs_mb", tmpfs_mb),
                            ("max_message_mb", max_message_mb)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if open_files < 16:
            raise ValueError(f"open_files must be at least 16 (the interpreter needs some), "
                             f"got {open_files}")
        if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
            raise RuntimeError("crlhf.sandbox needs Linux (fork, namespaces, seccomp)")
        self.size = workers
        self.config = {
            "memory_mb": memory_mb, "file_size_mb": file_size_mb, "open_files": open_files,
            "tmpfs_mb": tmpfs_mb, "max_message_bytes": max_message_mb << 20,
            "checker_memory_mb": max(4096, 4 * memory_mb), "max_iter_items": 1_000_000,
            "bwrap": ("bwrap" if bwrap is True else str(bwrap)) if bwrap else "",
            "seccomp": bool(seccomp),
            "network_namespace": bool(network_namespace),
        }
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._layers: dict[str, bool] | None = None
        self._pid = os.getpid()
        self._closed = False
        self._retired_cpu = 0.0
        self._finalizer = weakref.finalize(self, _close_workers, self._workers)

    # -- lifecycle -------------------------------------------------------------------------
    def _start(self):
        if self._closed:
            raise RuntimeError("this Sandbox is closed")
        if self._pid != os.getpid():  # forked host: the workers belong to the parent
            self._workers.clear()
            self._pid = os.getpid()
        while len(self._workers) < self.size:
            worker = _Worker(self.config)
            self._workers.append(worker)
            hello = worker.wait_hello()
            if self._layers is None:
                self._layers = dict(hello["layers"])
                for layer, reason in hello.get("reasons", {}).items():
                    if self.config["bwrap"] == "" and layer == "bwrap":
                        continue
                    if reason == "disabled":
                        continue
                    warnings.warn(
                        f"crlhf.sandbox: layer {layer!r} ({LAYER_DESCRIPTIONS.get(layer, layer)}) "
                        f"is unavailable: {reason}. Samples run with the other layers.",
                        SandboxWarning, stacklevel=4)

    def _replace(self, worker):
        """Kill ``worker`` and start another in its place; its hello is awaited at its first job,
        so the call that gave up on the old one returns at once."""
        worker.kill()
        self._workers[self._workers.index(worker)] = _Worker(self.config)

    def close(self):
        """Stop the workers; the Sandbox cannot be used afterwards."""
        with self._lock:
            self._closed = True
            self._retired_cpu += _close_workers(self._workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- public ----------------------------------------------------------------------------
    def sandbox_cpu_seconds(self) -> float:
        """CPU seconds of the zygotes and sample processes of workers that have been closed
        (bwrap hides them from ``getrusage`` here; the workers' own CPU shows in
        ``RUSAGE_CHILDREN``). Complete after ``close()``; workers killed by the watchdog are lost."""
        return self._retired_cpu

    def layers(self) -> dict[str, bool]:
        """Which isolation layers are active (names in ``LAYER_DESCRIPTIONS``)."""
        with self._lock:
            self._start()
            return dict(self._layers)

    def check(self, program: str, test: str, entry_point: str | None = None,
              timeout: float = 3.0) -> Result:
        """Run one sample; see the module docstring."""
        return self.check_many([(program, test, entry_point)], timeout=timeout, progress=False)[0]

    def check_many(self, items, timeout: float = 3.0, progress: bool = True) -> list[Result]:
        """Run ``(program, test, entry_point)`` triples in parallel; results in input order."""
        timeout = _validate_timeout(timeout)
        jobs = [_validate_item(i, item) for i, item in enumerate(items)]
        results: list[Result | None] = [None] * len(jobs)
        if not jobs:
            return []
        from tqdm.auto import tqdm

        with self._lock, tqdm(total=len(jobs), desc="sandbox", unit="sample",
                              disable=not progress) as bar:
            self._start()
            self._dispatch(jobs, timeout, results, bar)
        return results

    # -- scheduling --------------------------------------------------------------------------
    def _dispatch(self, jobs, timeout, results, bar):
        """Keep up to ``_DEPTH`` jobs queued at each worker, so it never waits for the host.
        A job's watchdog deadline starts when the job before it at that worker finishes."""
        pending = deque(range(len(jobs)))
        limit = timeout + _GRACE
        frames = {}

        def settle(worker, status, detail, duration):
            index = worker.queue.popleft()
            results[index] = _make_result(status, detail, duration)
            worker.deadline = time.monotonic() + limit if worker.queue else None
            bar.update(1)

        def retire(worker):  # its queued jobs go back to the front of the line
            pending.extendleft(reversed(worker.queue))
            worker.queue.clear()
            self._replace(worker)

        try:
            while pending or any(w.queue for w in self._workers):
                for worker in list(self._workers):
                    while pending and len(worker.queue) < _DEPTH:
                        if worker.hello is None:
                            worker.wait_hello()
                        index = pending[0]
                        if index not in frames:
                            frames[index] = _frame(dict(jobs[index], op="job", id=index,
                                                        timeout=timeout))
                        if worker.queue and len(frames[index]) > _PIPELINE_BYTES:
                            break
                        pending.popleft()
                        try:
                            worker.sock.sendall(frames.pop(index))
                        except OSError:
                            pending.appendleft(index)
                            retire(worker)
                            break
                        if not worker.queue:
                            worker.deadline = time.monotonic() + limit
                        worker.queue.append(index)
                busy = {w.sock: w for w in self._workers if w.queue}
                wait = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
                ready, _, _ = select.select(list(busy), [], [], wait)
                for sock in ready:
                    worker = busy[sock]
                    try:
                        msg = _recv(sock)
                    except (OSError, ValueError):
                        msg = None
                    if msg is None or msg.get("op") != "result" or msg.get("id") != worker.queue[0]:
                        settle(worker, "error", "the sandbox worker died", 0.0)
                        retire(worker)
                    else:
                        settle(worker, msg["status"], msg["detail"], msg["duration"])
                now = time.monotonic()
                for worker in busy.values():
                    if worker.queue and worker.deadline <= now:
                        settle(worker, "timeout",
                               f"exceeded the {timeout:g} s limit (worker restarted)", limit)
                        retire(worker)
        finally:
            for worker in list(self._workers):  # interrupted: their answers would be stale
                if worker.queue:
                    worker.queue.clear()
                    self._replace(worker)


def _close_workers(workers):
    """Close ``workers``; the CPU seconds their sandboxes reported."""
    cpu = 0.0
    for worker in workers:
        worker.close()
        cpu += worker.sandbox_cpu
    workers.clear()
    return cpu


_default: Sandbox | None = None
_default_lock = threading.Lock()


def _get_default(workers=None) -> Sandbox:
    global _default
    with _default_lock:
        if _default is not None and workers is not None and _default.size != workers:
            _default.close()
            _default = None
        if _default is None or _default._closed:
            _default = Sandbox(workers)
        return _default


def check_program(program: str, test: str, entry_point: str | None = None,
                  timeout: float = 3.0) -> Result:
    """Run one untrusted program against its test in the shared sandbox pool."""
    return _get_default().check(program, test, entry_point, timeout)


def check_many(items, timeout: float = 3.0, workers: int | None = None,
               progress: bool = True) -> list[Result]:
    """Run many ``(program, test, entry_point)`` triples in the shared pool; results in input
    order, with a progress bar. ``workers`` resizes the pool (None keeps the current one, or
    starts one worker per core)."""
    return _get_default(workers).check_many(items, timeout=timeout, progress=progress)


def layers() -> dict[str, bool]:
    """Which isolation layers the shared pool has active."""
    return _get_default().layers()
