"""Isolated, parallel execution of untrusted programs, with verdicts that cannot be forged.

``check_program(program, test, entry_point=None, timeout=3.0) -> Result`` runs one sample;
``check_many(items, timeout=3.0, workers=None, progress=True)`` runs many
``(program, test, entry_point)`` triples over a pool of long-lived workers (one per core).
With ``entry_point``, ``test`` is HumanEval-style code defining ``check(candidate)``, called with
the program's function; without it, ``test`` is MBPP-style statements (asserts) run after the
program, e.g. ``test_setup_code + "\\n" + "\\n".join(test_list)``.

How a sample is run (the processes are in ``crlhf/_sandbox_worker.py``). The sandbox treats a
sample as an attacker would write it, and refuses to run rather than run it unprotected.

* **Process per sample.** The program runs in a fresh process forked from a long-lived zygote
  that never holds a test, in its own process group (seccomp keeps it there), killed and reaped
  with every thread when its job ends, passed or not.
* **Filesystem, signals, ptrace: Landlock** (Linux >= 5.13, no package, no privilege), applied by
  each sample to itself: it may read only the interpreter, its standard library, importable
  packages (not ``DENIED_PACKAGES``: benchmark data, the kit's own reference solutions), shared
  libraries and ``/proc``, and write only its own directory; no TCP (ABI >= 4); no signal or
  abstract socket outside itself (ABI >= 6); and no other process's memory (Landlock's ptrace
  rule, which closes ``/proc/<pid>/mem`` too).
* **bubblewrap** (Debian package ``bubblewrap``), where installed, on top: an empty read-only
  root holding only ``/usr``, the interpreter's paths (those packages masked), a private
  ``/proc`` and ``/dev``, new pid/net/ipc/uts namespaces; as root, samples become uid 65534.
* **Capabilities**: every sample empties its bounding, ambient, effective, permitted and
  inheritable sets; as root without bwrap it stays uid 0 but has no capability, and Landlock,
  not file modes, keeps it from root's files.
* **seccomp** (``pyseccomp``): no fork/exec, kill, ptrace, sockets, System V IPC, mounts, BPF,
  io_uring, keyrings, and no ``fcntl``/``ioctl`` that would point SIGIO at another process.
* **Resources**: CPU, memory, file-size and open-file limits; the processes and threads of a
  worker's samples capped (a cgroup's ``pids.max``, else ``RLIMIT_NPROC`` under uid 65534, else
  no threads at all); a fresh tmpfs per job with a byte and file cap; no network (a network and
  IPC namespace per worker); a clean environment.
* **The split checker**: the verdict is taken in the worker, a separate trusted process that
  never runs sample code: the test runs there and calls the program's functions over a socket.
  Only plain built-in values (numbers, strings, bytes, lists, tuples, dicts, sets, ranges;
  subclasses are converted to the base type) come back; anything else stays in the sample as an
  opaque handle that compares by identity (a new handle each time: two are the same object only
  when the test kept one), and nothing the test compares a result with is ever sent to the
  sample. So ``__eq__`` tricks, ``gc`` hunting for the verdict, patched builtins, printing
  "passed", ``sys.exit(0)``, forged protocol frames and the like cannot pass a test.
* Builtins the test uses are the checker's own (an MBPP-style test that calls only program
  functions named like builtins, such as MBPP task 126's ``sum``, gets the program's). A free
  name of the test that is a standard-library module (``sys``, ``math``) is always the checker's
  own module, whatever the program binds to it; a module *value* from the program is the
  checker's copy only for the modules in ``_CHECKER_MODULES``, and the checker never imports at
  a program's word. Helpers that a HumanEval test calls besides the candidate (``poly``,
  ``encode_cyclic``) come from a second sample process that runs only the statements before the
  entry point, so a completion cannot redefine them.
* Arguments are copies: a function that mutates its argument does not change the test's object.

**Fail closed.** Each worker, before it takes a job, runs start-up probes — samples of its own
that try to write outside their directory, read a 0600 canary, open the checker's
``/proc/<pid>/mem``, signal a canary process through ``F_SETOWN``/``F_SETSIG``, create System V
IPC objects and start more threads than the cap — and checks the host side of each. If any
succeeds, or no filesystem layer (Landlock or bwrap), seccomp or disk cap is in force, the
``Sandbox`` refuses to start with a ``SandboxUnavailable`` error that names what is missing and
how to get it. ``Sandbox(unsafe=True)`` or ``CRLHF_SANDBOX_UNSAFE=1`` runs anyway, with a
``SandboxWarning`` at every start; nothing in the kit does. ``layers()`` reports the layers and
the probes (``blocks_*``), ``layer_details()`` how each is provided or why it is missing.
"""

from __future__ import annotations

import json
import math
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

__all__ = ["LAYER_DESCRIPTIONS", "UNSAFE_ENV", "SandboxWarning", "SandboxUnavailable", "Result", "Sandbox",
           "check_program", "check_many", "layers"]

STATUSES = ("passed", "failed", "timeout", "error")
_WORKER_SCRIPT = Path(__file__).with_name("_sandbox_worker.py")
# Read once: a worker restarted later runs this text, whatever happens to the file meanwhile.
_WORKER_SOURCE = _WORKER_SCRIPT.read_text(encoding="utf-8")
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
    "network_namespace": "no network (network and IPC namespaces per worker)",
    "seccomp": "fork, exec, signals, ptrace, sockets, System V IPC and mounts blocked (pyseccomp)",
    "landlock": "reads limited to the interpreter and libraries, writes to the sample's own "
                "directory, no signals or ptrace outside it (Landlock)",
    "bwrap": "an empty read-only root with only /usr and the interpreter, private /proc, "
             "own pid namespace (bubblewrap)",
    "unprivileged_uid": "samples run as an unprivileged uid (65534 when the worker is root)",
    "no_capabilities": "samples hold no capability (bounding set emptied)",
    "pids_limit": "processes and threads of a worker's samples capped",
    "disk_quota": "a fresh size- and file-capped tmpfs per job",
    "blocks_write_outside": "start-up probe: a sample cannot write outside its directory",
    "blocks_secret_read": "start-up probe: a sample cannot read a 0600 canary file",
    "blocks_checker_memory": "start-up probe: a sample cannot open /proc/<checker>/mem",
    "blocks_signals": "start-up probe: a sample cannot signal a canary (F_SETOWN/F_SETSIG, kill)",
    "blocks_sysv_ipc": "start-up probe: a sample cannot create System V IPC objects",
    "blocks_thread_bomb": "start-up probe: a sample cannot start more threads than the cap",
}
# How to get each layer the start-up check requires.
_REMEDY = {
    "filesystem": "run on Linux >= 5.13 with Landlock enabled (it needs no package), or install "
                  "bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)",
    "seccomp": "pip install pyseccomp (it needs libseccomp2, on Debian/Ubuntu: apt-get install "
               "libseccomp2)",
    "disk_quota": "run as root or where unprivileged user namespaces are allowed, or install "
                  "bubblewrap",
    "write_outside": "Landlock or bubblewrap",
    "secret_read": "Landlock or bubblewrap",
    "checker_memory": "Landlock (its ptrace rule) or bubblewrap (a pid namespace)",
    "signals": "seccomp (pyseccomp) or Landlock ABI >= 6 (Linux >= 6.12)",
    "sysv_ipc": "seccomp (pyseccomp)",
    "thread_bomb": "a writable pids cgroup, root (uid 65534 with RLIMIT_NPROC), or seccomp",
}
UNSAFE_ENV = "CRLHF_SANDBOX_UNSAFE"


class SandboxWarning(RuntimeWarning):
    """An isolation layer is unavailable on this machine, or the sandbox runs unsafe."""


class SandboxUnavailable(RuntimeError):
    """The sandbox refused to start: a start-up probe got through, or a required layer is
    missing. The message names each and how to get it."""


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


def _pids_cgroup_parent():
    """The pids-controller cgroup this process is in, where a child cgroup can be made
    (cgroup v1's pids hierarchy, or v2 with pids delegated), else None."""
    try:
        own = {}
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                own[controllers] = path
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None
    for fields in mounts:
        tail = fields[fields.index("-") + 1:]
        fstype, mount_root, point = tail[0], fields[3], fields[4]
        if fstype == "cgroup" and "pids" in tail[2].split(","):
            key = next((k for k in own if "pids" in k.split(",")), None)
        elif fstype == "cgroup2":
            key = ""
        else:
            continue
        if key is None or key not in own:
            continue
        rel = os.path.relpath(own[key], mount_root) if own[key].startswith(mount_root) else None
        if rel is None:
            continue
        directory = os.path.normpath(os.path.join(point, rel))
        if fstype == "cgroup2":
            try:
                with open(os.path.join(directory, "cgroup.subtree_control")) as fh:
                    if "pids" not in fh.read().split():
                        continue
            except OSError:
                continue
        return directory
    return None


_cgroup_serial = 0


def _make_cgroup(max_tasks):
    """A new cgroup capped at ``max_tasks`` processes and threads, or None if none can be made."""
    global _cgroup_serial
    parent = _pids_cgroup_parent()
    if parent is None:
        return None
    _cgroup_serial += 1
    path = os.path.join(parent, f"crlhf-sandbox-{os.getpid()}-{_cgroup_serial}")
    try:
        os.mkdir(path)
    except OSError:
        return None
    try:
        with open(os.path.join(path, "pids.max"), "w") as fh:
            fh.write(str(max_tasks))
        return path
    except OSError:
        _remove_cgroup(path)
        return None


def _remove_cgroup(path):
    for _ in range(50):  # its processes may take a moment to be gone after a kill
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


class _Worker:
    """The host's handle on one worker process."""

    def __init__(self, config):
        # Scratch space for samples when bwrap is missing; owned here, so a killed worker's goes too.
        self.tmp_base = tempfile.mkdtemp(prefix="crlhf-sandbox-")
        os.chmod(self.tmp_base, 0o711)  # samples running as uid 65534 traverse it
        self.cgroup = _make_cgroup(config["max_tasks"])
        config = dict(config, tmp_base=self.tmp_base, cgroup=self.cgroup or "")
        self.config = config
        ours, theirs = socket.socketpair()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _WORKER_SOURCE, "worker", str(theirs.fileno()),
             json.dumps(config)],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, start_new_session=True)
        theirs.close()
        self.sock = ours
        self.queue: deque[int] = deque()  # indices of the jobs sent and not yet answered
        self.deadline = math.inf  # for the first of them; inf while idle
        self.hello = None
        self.sandbox_cpu = 0.0

    def wait_hello(self):
        ready, _, _ = select.select([self.sock], [], [], _START_TIMEOUT)
        hello = _recv(self.sock) if ready else None
        if hello is None or hello.get("op") != "hello":
            self.kill()
            assert self.proc.stderr is not None  # started with stderr=PIPE
            err = self.proc.stderr.read().decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"the sandbox worker did not start: {err or 'no output'}")
        assert self.proc.stderr is not None
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
        if self.cgroup:
            _remove_cgroup(self.cgroup)

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
    ``open_files``: per-sample limits; ``tmpfs_mb`` and ``max_files``: the bytes and files a
    job's samples may write in all; ``max_tasks``: processes and threads of a worker's samples
    at once. ``bwrap``: the bwrap executable, or False not to use bubblewrap (Landlock still
    isolates). ``landlock``, ``seccomp``, ``network_namespace``: False to switch those layers off
    (the start-up check then decides whether what is left suffices). ``unsafe``: run even when
    the start-up check fails (also ``CRLHF_SANDBOX_UNSAFE=1``); never the default.
    The workers start, and prove their isolation, at the first ``check``/``layers()`` call.
    """

    def __init__(self, workers: int | None = None, *, memory_mb: int = 1024,
                 file_size_mb: int = 16, open_files: int = 64, tmpfs_mb: int = 64,
                 max_files: int = 4096, max_tasks: int = 64, max_message_mb: int = 16,
                 bwrap: str | bool = "bwrap", landlock: bool = True, seccomp: bool = True,
                 network_namespace: bool = True, unsafe: bool = False):
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        for name, value in (("memory_mb", memory_mb), ("file_size_mb", file_size_mb),
                            ("open_files", open_files), ("tmpfs_mb", tmpfs_mb),
                            ("max_message_mb", max_message_mb), ("max_files", max_files),
                            ("max_tasks", max_tasks)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if open_files < 16:
            raise ValueError(f"open_files must be at least 16 (the interpreter needs some), "
                             f"got {open_files}")
        if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
            raise SandboxUnavailable(
                f"crlhf.sandbox refuses to run untrusted code on {sys.platform}: its isolation "
                f"needs Linux (>= 5.13 with Landlock, or bubblewrap); use a Linux machine or "
                f"container")
        self.size = workers
        self.config = {
            "memory_mb": memory_mb, "file_size_mb": file_size_mb, "open_files": open_files,
            "tmpfs_mb": tmpfs_mb, "max_message_bytes": max_message_mb << 20,
            "checker_memory_mb": max(4096, 4 * memory_mb), "max_iter_items": 1_000_000,
            "bwrap": ("bwrap" if bwrap is True else str(bwrap)) if bwrap else "",
            "seccomp": bool(seccomp), "landlock": bool(landlock),
            "network_namespace": bool(network_namespace), "max_files": max_files,
            "max_tasks": max_tasks, "workers": workers,
        }
        self.unsafe = bool(unsafe) or os.environ.get(UNSAFE_ENV, "") not in ("", "0")
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._layers: dict[str, bool] | None = None
        self._details: dict[str, str] = {}
        self.probe_seconds: float | None = None  # the first worker's start-up probes
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
            self._admit(worker)

    def _admit(self, worker):
        """Wait for a worker's hello and judge its start-up check: the first worker's layers
        are announced; any worker that fails the check (or comes up weaker than the first) stops
        the sandbox unless it runs unsafe."""
        try:
            hello = worker.wait_hello()
        except RuntimeError:
            self._workers.remove(worker)
            raise
        layers = dict(hello["layers"])
        probes = hello["probes"]
        layers.update({f"blocks_{name}": bool(blocked) for name, (blocked, _) in probes.items()})
        problems = _refusals(layers, hello["reasons"], probes)
        first = self._layers is None
        if self._layers is not None:
            problems += [f"a restarted worker lacks {name!r}" for name, on in self._layers.items()
                         if on and not layers.get(name)]
        if problems and not self.unsafe:
            worker.kill()
            self._workers.remove(worker)
            raise SandboxUnavailable(
                "crlhf.sandbox refuses to run untrusted code here:\n- " + "\n- ".join(problems)
                + f"\nTo run anyway, without that protection: Sandbox(unsafe=True) or "
                  f"{UNSAFE_ENV}=1.")
        if problems and first:
            warnings.warn("crlhf.sandbox runs UNSAFE (unsafe=True or " + UNSAFE_ENV + "=1): "
                          + "; ".join(problems), SandboxWarning, stacklevel=5)
        if not first:
            return
        self._layers = layers
        self.probe_seconds = hello["probe_seconds"]
        self._details = {name: hello["details"].get(name) or hello["reasons"].get(name, "")
                         for name in layers}
        self._details.update({f"blocks_{n}": d for n, (_, d) in probes.items()})
        for layer, reason in hello["reasons"].items():
            if layers.get(layer, True) or reason == "disabled" or (
                    layer == "bwrap" and not self.config["bwrap"]):
                continue
            if layer == "unprivileged_uid" and layers["landlock"]:
                continue  # Landlock, not file modes, keeps a capability-less uid 0 out
            warnings.warn(
                f"crlhf.sandbox: layer {layer!r} ({LAYER_DESCRIPTIONS.get(layer, layer)}) "
                f"is unavailable: {reason}. Samples run with the other layers, which passed "
                f"the start-up check.", SandboxWarning, stacklevel=5)

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
        """CPU seconds of the zygotes and sample processes of workers that have been closed.
        With bwrap they are hidden from this process's ``getrusage(RUSAGE_CHILDREN)``, so add
        this figure; without bwrap they are already in it (do not add both). Complete after
        ``close()``; workers killed by the watchdog are lost."""
        return self._retired_cpu

    def layers(self) -> dict[str, bool]:
        """Which isolation layers are active and which start-up probes were blocked (names and
        meanings in ``LAYER_DESCRIPTIONS``)."""
        with self._lock:
            self._start()
            assert self._layers is not None  # set by the first worker's hello
            return dict(self._layers)

    def layer_details(self) -> dict[str, str]:
        """For each entry of ``layers()``: how it is provided (e.g. ``"ABI 7"``, ``"cgroup
        pids.max = 64"``), why it is missing, or what its probe saw."""
        with self._lock:
            self._start()
            return dict(self._details)

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
        done = [r for r in results if r is not None]
        assert len(done) == len(jobs)  # _dispatch settles every job
        return done

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
            worker.deadline = time.monotonic() + limit if worker.queue else math.inf
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
                            self._admit(worker)
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
                if not busy:  # every send failed: the retired workers' jobs go to their successors
                    continue
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


def _refusals(layers, reasons, probes):
    """Why a worker's isolation is not enough to run untrusted code: one line each."""
    problems = []
    if not (layers["landlock"] or layers["bwrap"]):
        problems.append(f"no filesystem layer (Landlock: {reasons.get('landlock', '?')}; "
                        f"bwrap: {reasons.get('bwrap', '?')}): {_REMEDY['filesystem']}")
    for layer in ("seccomp", "disk_quota"):
        if not layers[layer]:
            problems.append(f"{layer} is missing ({reasons.get(layer, '?')}): {_REMEDY[layer]}")
    for name, (blocked, detail) in probes.items():
        if not blocked:
            problems.append(f"start-up probe {name!r} got through ({detail}); it needs "
                            f"{_REMEDY[name]}")
    return problems


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
