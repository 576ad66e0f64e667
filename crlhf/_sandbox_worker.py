"""Processes behind ``crlhf.sandbox``; standard library only, run as a script, never imported.

Four roles, one file:

* **worker** (W): long-lived, one per core, started by the host with ``sys.executable -I``. Moves
  into its own network namespace once, starts a zygote, then serves jobs. It is also the
  **checker**: it runs the test (trusted code), calling the sample's functions over a socket and
  rebuilding only plain built-in values (or opaque handles), so the verdict is taken in a process
  the sample's code never ran in and cannot reach.
* **zygote** (Z): long-lived, inside ``bwrap`` where available (read-only root, private /tmp,
  /root and /home hidden, new pid/net/ipc/uts namespaces; as root it keeps only the capabilities
  it needs to hand samples to uid 65534, otherwise a user namespace maps uid 65534 to the
  caller). It never sees a program or a test: it only forks sample processes onto sockets handed
  to it, kills and reaps them.
* **sample** (U): forked from the zygote for one sample; sets limits, a clean environment, a
  fresh temporary directory and a seccomp filter (no fork/exec/kill/ptrace/socket), then reads
  the program from its socket, runs it and answers calls, attribute reads and the like.
"""

import ast
import builtins
import ctypes
import errno
import json
import math
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import types

NOBODY = 65534
CLONE_NEWNET = 0x40000000
CLONE_THREAD = 0x00010000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
SEQ_MAX = 1 << 16
_HEADER = struct.Struct("!Q")
_BIG_INT = 1 << 12000  # beyond ~3600 digits ints travel as hex (str(int) is capped at 4300 digits)

_libc = _prctl_fn = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _prctl(option, arg2, arg3=0):
    """prctl(2); True on success. Prepared once, so forked samples call it cheaply."""
    global _prctl_fn
    try:
        if _prctl_fn is None:
            fn = ctypes.CDLL(None, use_errno=True).prctl
            fn.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong)
            fn.restype = ctypes.c_int
            _prctl_fn = fn
        return _prctl_fn(option, arg2, arg3, 0, 0) == 0
    except (AttributeError, OSError, ctypes.ArgumentError):
        return False


def _devnull_stdio():
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _close_fds_except(keep):
    last = 2
    for fd in sorted(keep):
        if fd > last + 1:
            os.closerange(last + 1, fd)
        last = max(last, fd)
    os.closerange(last + 1, 1 << 20)


# --------------------------------------------------------------------------- framing

class ProtocolError(Exception):
    """A peer sent something that is not a well-formed message."""


def send_frame(sock, obj):
    data = json.dumps(obj).encode("ascii")
    sock.sendall(_HEADER.pack(len(data)) + data)


class FrameReader:
    """Length-prefixed JSON frames from a stream socket, read in as few syscalls as possible."""

    def __init__(self, sock, limit):
        self.sock, self.limit = sock, limit
        self.buf = bytearray()

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(n - len(self.buf), 1 << 16))
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read(self):
        """One frame, or None at end of stream; ProtocolError if oversized or malformed."""
        if not self._fill(_HEADER.size):
            return None
        (size,) = _HEADER.unpack_from(self.buf)
        if size > self.limit:
            raise ProtocolError(f"message of {size} bytes exceeds the {self.limit}-byte limit")
        if not self._fill(_HEADER.size + size):
            return None
        body = bytes(self.buf[_HEADER.size:_HEADER.size + size])
        del self.buf[:_HEADER.size + size]
        try:
            return json.loads(body)
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ProtocolError(f"undecodable message: {type(exc).__name__}") from None


def send_packet(sock, obj, fds=()):
    data = json.dumps(obj).encode("ascii")
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def recv_packet(sock):
    """(message, fds) from a SOCK_SEQPACKET socket; (None, []) at end of stream."""
    data, fds, _flags, _addr = socket.recv_fds(sock, SEQ_MAX, 4)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), fds


# --------------------------------------------------------------------------- values
# Wire form: JSON scalars (str, int, float, bool, null) and lists stand for themselves; every
# other value is a one-key object: t tuple, d dict (pairs), s set, f frozenset, b bytes (hex),
# y bytearray (hex), c complex, g range, i big int (hex), r handle (id, type name), m module,
# n a built-in object by name (``int``, ``len``).

def encode(value, fallback):
    t = type(value)
    if t is str or t is float or t is bool or value is None:
        return value
    if t is int:
        return value if -_BIG_INT < value < _BIG_INT else {"i": format(value, "x")}
    if t is list:
        return [encode(v, fallback) for v in value]
    if t is tuple:
        return {"t": [encode(v, fallback) for v in value]}
    if t is dict:
        return {"d": [[encode(k, fallback), encode(v, fallback)] for k, v in value.items()]}
    if t is set:
        return {"s": [encode(v, fallback) for v in value]}
    if t is frozenset:
        return {"f": [encode(v, fallback) for v in value]}
    if t is bytes:
        return {"b": value.hex()}
    if t is bytearray:
        return {"y": value.hex()}
    if t is complex:
        return {"c": [value.real, value.imag]}
    if t is range:
        return {"g": [value.start, value.stop, value.step]}
    return fallback(value)


def _items(body):
    if type(body) is not list:
        raise ProtocolError("container body is not a list")
    return body


def _number(x):
    if type(x) not in (int, float):
        raise ProtocolError("expected a number")
    return x


def _whole(x):
    if type(x) is not int:
        raise ProtocolError("expected an integer")
    return x


def builtin_name(value, table):
    """The name under which ``value`` is a built-in of ``table`` (a dict of builtins), or None."""
    name = getattr(value, "__name__", None)
    return name if type(name) is str and table.get(name) is value else None


# Built-ins a sample may hand to the checker by name: types and side-effect-free functions.
SAFE_BUILTINS = {
    name: value for name, value in vars(builtins).items()
    if not name.startswith("_") and (
        isinstance(value, type) or name in {
            "abs", "all", "any", "ascii", "bin", "callable", "chr", "divmod", "format", "hash",
            "hex", "isinstance", "issubclass", "len", "max", "min", "oct", "ord", "pow", "repr",
            "round", "sorted", "sum"})}


def decode(wire, ref, module, names=SAFE_BUILTINS):
    """Rebuild a value from its wire form; only built-in types, ``ref(...)``, ``module(...)``
    and built-ins looked up in ``names``."""
    t = type(wire)
    if t is str or t is int or t is float or t is bool or wire is None:
        return wire
    if t is list:
        return [decode(v, ref, module) for v in wire]
    if t is not dict or len(wire) != 1:
        raise ProtocolError("malformed value")
    ((tag, body),) = wire.items()
    try:
        if tag == "t":
            return tuple(decode(v, ref, module) for v in _items(body))
        if tag == "d":
            out = {}
            for pair in _items(body):
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("malformed dict entry")
                out[decode(pair[0], ref, module)] = decode(pair[1], ref, module)
            return out
        if tag == "s":
            return {decode(v, ref, module) for v in _items(body)}
        if tag == "f":
            return frozenset(decode(v, ref, module) for v in _items(body))
        if tag in ("b", "y", "i", "m", "n") and type(body) is not str:
            raise ProtocolError("malformed scalar")
        if tag == "b":
            return bytes.fromhex(body)
        if tag == "y":
            return bytearray.fromhex(body)
        if tag == "i":
            return int(body, 16)
        if tag == "c":
            re_, im = _items(body)
            return complex(_number(re_), _number(im))
        if tag == "g":
            start, stop, step = _items(body)
            return range(_whole(start), _whole(stop), _whole(step))
        if tag == "r":
            rid, name = _items(body)
            if type(name) is not str:
                raise ProtocolError("malformed handle")
            return ref(_whole(rid), name[:200])
        if tag == "m":
            return module(body)
        if tag == "n":
            if body not in names:
                raise ProtocolError(f"unknown built-in {body[:100]!r}")
            return names[body]
    except ProtocolError:
        raise
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed value: {type(exc).__name__}: {exc}") from None
    raise ProtocolError(f"unknown value tag {tag!r}")


# Taken at start-up, before any program could patch the builtins module.
ORIGINAL_BUILTINS = dict(vars(builtins))


def _builtin_base(exc_type):
    for cls in exc_type.__mro__:
        if getattr(builtins, cls.__name__, None) is cls:
            return cls.__name__
    return "BaseException"


# --------------------------------------------------------------------------- sample process (U)

def _sample_main(sock_fd, tmpdir, config, seccomp_program):
    """Never returns. Runs in the process forked by the zygote for one sample."""
    sock = None
    try:
        sock = socket.socket(fileno=sock_fd)
        os.setpgid(0, 0)
        # Not dumpable: no other sample (same uid) may read or write this one's memory.
        if not (_prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and _prctl(PR_SET_DUMPABLE, 0)):
            raise OSError("prctl failed")
        _devnull_stdio()
        _close_fds_except({sock_fd})
        os.umask(0o077)
        os.chdir(tmpdir)
        if config["drop_uid"]:
            os.chown(tmpdir, NOBODY, NOBODY)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        os.environ["HOME"] = os.environ["TMPDIR"] = tmpdir  # the rest was cleaned by the zygote
        tempfile.tempdir = tmpdir
        import resource
        mem = config["memory_mb"] << 20
        cpu = config["cpu_seconds"]
        for limit, value in ((resource.RLIMIT_AS, (mem, mem)),
                             (resource.RLIMIT_CPU, (cpu, cpu + 1)),
                             (resource.RLIMIT_FSIZE, (config["file_size_mb"] << 20,) * 2),
                             (resource.RLIMIT_NOFILE, (config["open_files"],) * 2),
                             (resource.RLIMIT_CORE, (0, 0))):
            resource.setrlimit(limit, value)
        if seccomp_program is not None:
            seccomp_program.install()
    except BaseException as exc:  # never run a program without the layers it was promised
        if sock is not None:
            try:
                send_frame(sock, ["harness", f"sandbox setup failed: {type(exc).__name__}: {exc}"])
            except OSError:
                pass
        os._exit(70)
    try:
        _serve(sock, config)
    finally:
        os._exit(0)


def _describe(exc):
    try:
        message = str(exc)
    except BaseException:
        message = "<unprintable>"
    return ["exc", _builtin_base(type(exc)), type(exc).__name__[:100], message[:2000]]


def _serve(sock, config):
    """Answer the checker's requests until it hangs up."""
    namespace = {}
    handles, handle_of = {}, {}
    reader = FrameReader(sock, config["max_message_bytes"])
    original_builtins = ORIGINAL_BUILTINS

    def fallback(value):
        for base in (int, float, complex, str, bytes, bytearray):
            if isinstance(value, base):
                return encode(base(value) if base is not int else int.__index__(value), fallback)
        for base in (list, tuple, set, frozenset):
            if isinstance(value, base):
                return encode(base(base.__iter__(value)), fallback)
        if isinstance(value, dict):
            return encode(dict(dict.items(value)), fallback)
        if isinstance(value, types.ModuleType):
            return {"m": str(value.__name__)}
        name = builtin_name(value, original_builtins)
        if name is not None:
            return {"n": name}
        np = sys.modules.get("numpy")
        if np is not None and isinstance(value, np.generic) and np.ndim(value) == 0:
            return encode(value.item(), fallback)
        return handle(value)

    def handle(value):
        key = id(value)
        if key not in handle_of:
            handle_of[key] = len(handles) + 1
            handles[handle_of[key]] = value
        return {"r": [handle_of[key], type(value).__qualname__[:200]]}

    def ref(rid, _name):
        if rid not in handles:
            raise ProtocolError(f"unknown handle {rid}")
        return handles[rid]

    def no_module(name):
        raise ProtocolError("modules cannot be passed to the program")

    def arg(wire):
        return decode(wire, ref, no_module, original_builtins)

    def lookup(names):
        found = {}
        for name in names:
            if name in namespace:
                try:
                    found[name] = encode(namespace[name], fallback)
                except Exception:  # e.g. a self-referencing list: the checker gets a handle
                    found[name] = handle(namespace[name])
        return ["ok", {"d": [[k, v] for k, v in found.items()]}]

    while True:
        try:
            msg = reader.read()
        except (ProtocolError, OSError):
            return
        if msg is None or type(msg) is not list or not msg:
            return
        op = msg[0]
        try:
            if op == "exec":  # run the program (or its first `stop` statements), then look up names
                _, program, stop, names = msg
                if stop is None:
                    code = compile(program, "<program>", "exec")
                else:
                    tree = ast.parse(program, "<program>")
                    code = compile(ast.Module(body=tree.body[:stop], type_ignores=[]),
                                   "<program>", "exec")
                exec(code, namespace)
                reply = lookup(names)
            elif op == "lookup":
                reply = lookup(msg[1])
            elif op == "call":
                fn = ref(msg[1], "")
                reply = ["ok", encode(fn(*arg(msg[2]), **arg(msg[3])), fallback)]
            elif op == "getattr":
                reply = ["ok", encode(getattr(ref(msg[1], ""), msg[2]), fallback)]
            elif op == "setattr":
                setattr(ref(msg[1], ""), msg[2], arg(msg[3]))
                reply = ["ok", None]
            elif op == "getitem":
                reply = ["ok", encode(ref(msg[1], "")[arg(msg[2])], fallback)]
            elif op == "setitem":
                ref(msg[1], "")[arg(msg[2])] = arg(msg[3])
                reply = ["ok", None]
            elif op == "len":
                reply = ["ok", len(ref(msg[1], ""))]
            elif op == "bool":
                reply = ["ok", bool(ref(msg[1], ""))]
            elif op == "str":
                reply = ["ok", str(ref(msg[1], ""))]
            elif op == "iter":
                items, cap = [], config["max_iter_items"]
                for item in ref(msg[1], ""):
                    items.append(item)
                    if len(items) > cap:
                        raise ValueError(f"iteration produced more than {cap} items")
                reply = ["ok", encode(items, fallback)]
            else:
                return
        except BaseException as exc:
            reply = _describe(exc)
        try:
            send_frame(sock, reply)
        except BaseException as exc:
            try:
                send_frame(sock, _describe(exc))
            except BaseException:
                return


# --------------------------------------------------------------------------- zygote (Z)

_SECCOMP_DENY = (
    "fork", "vfork", "execve", "execveat", "kill", "tkill", "tgkill", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "ptrace",
    "process_vm_readv", "process_vm_writev", "socket", "unshare", "setns", "mount", "umount2",
    "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount", "setsid", "setpgid",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "personality",
)


class SeccompProgram:
    """A seccomp BPF program compiled once by libseccomp and installed in each sample by prctl."""

    PR_SET_NO_NEW_PRIVS = 38
    PR_SET_SECCOMP = 22
    SECCOMP_MODE_FILTER = 2

    def __init__(self, bpf):
        if not bpf or len(bpf) % 8:
            raise ValueError("libseccomp exported an empty or malformed BPF program")

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        self._code = ctypes.create_string_buffer(bpf, len(bpf))
        self._prog = SockFprog(len(bpf) // 8, ctypes.addressof(self._code))
        self._address = ctypes.addressof(self._prog)
        _prctl(0, 0)  # prepare the prctl function before the zygote forks

    def install(self):
        if not (_prctl(self.PR_SET_NO_NEW_PRIVS, 1) and _prctl(
                self.PR_SET_SECCOMP, self.SECCOMP_MODE_FILTER, self._address)):
            raise OSError(ctypes.get_errno(), "installing the seccomp filter failed")


def build_seccomp_filter():
    """(SeccompProgram, reason): blocks process creation and escape routes (via pyseccomp)."""
    try:
        import pyseccomp as sc
    except ImportError:
        return None, "the Python package pyseccomp is not installed (pip install pyseccomp)"
    except Exception as exc:  # pyseccomp raises RuntimeError when libseccomp is missing
        return None, f"pyseccomp cannot load libseccomp: {exc}"
    try:
        flt = sc.SyscallFilter(sc.ALLOW)
        flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc then falls back to clone
        for name in _SECCOMP_DENY:
            try:
                flt.add_rule(sc.ERRNO(errno.EPERM), name)
            except (OSError, ValueError, RuntimeError):
                pass  # not a syscall on this architecture
        with tempfile.TemporaryFile() as fh:
            flt.export_bpf(fh)
            fh.seek(0)
            program = SeccompProgram(fh.read())
    except Exception as exc:
        return None, f"building the seccomp filter failed: {exc}"
    return program, ""


def _force_rmtree(path):
    def retry(func, target, _info):
        try:
            os.chmod(os.path.dirname(target) or ".", 0o700)
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            pass
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)


def _clean_dir(path):
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _force_rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _exit_text(status):
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# Imported once in the zygote so that samples start with them loaded.
_PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
            "random", "statistics", "fractions", "decimal", "datetime", "operator", "copy",
            "typing", "hashlib", "resource")


def _can_drop_uid(base):
    """Whether a sample running as nobody could still import the standard library."""
    if os.getuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            ok = all(os.access(p, os.R_OK | os.X_OK)
                     for p in (os.path.dirname(os.__file__), os.path.dirname(sys.executable), base))
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def _cpu_seconds():
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _zygote_main(ctl_fd, config):
    ctl = socket.socket(fileno=ctl_fd)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # also prepares prctl for the samples
    for name in _PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    flt, reason = build_seccomp_filter() if config["seccomp"] else (None, "disabled")
    os.environ.clear()
    os.environ.update(PATH="/usr/local/bin:/usr/bin:/bin", LANG="C.UTF-8", OMP_NUM_THREADS="1",
                      OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    import gc
    gc.freeze()  # fewer copy-on-write faults in the forked samples
    private_tmp = config["private_tmp"]
    base = private_tmp or config["tmp_base"]
    config = dict(config, drop_uid=_can_drop_uid(base))
    send_packet(ctl, {"seccomp": flt is not None, "seccomp_reason": reason,
                      "uid": os.getuid(), "drop_uid": config["drop_uid"]})
    _devnull_stdio()
    children = {}
    serial = 0

    def reap_all():
        """Kill this job's samples, reap them, clean up after them; their exit descriptions."""
        exits = []
        for pid, tmpdir in children.items():
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                exits.append(_exit_text(status))
            else:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                os.waitpid(pid, 0)
                exits.append("running")
            if not private_tmp:
                _force_rmtree(tmpdir)
        children.clear()
        if private_tmp:
            _clean_dir(private_tmp)
            _clean_dir("/dev/shm")
        return exits

    while True:
        msg, fds = recv_packet(ctl)
        if msg is None or msg.get("op") == "exit":
            reap_all()
            if msg is not None:
                send_packet(ctl, {"cpu": _cpu_seconds()})
            break
        if msg["op"] == "spawn":
            if msg["new_job"]:  # the previous job's samples, if the worker did not reap them
                reap_all()
            sample_config = dict(config, cpu_seconds=msg["cpu_seconds"])
            serial += 1
            tmpdir = os.path.join(base, f"sample-{serial}")
            if os.path.lexists(tmpdir):  # left by an earlier zygote that was killed
                _force_rmtree(tmpdir)
            os.mkdir(tmpdir, 0o700)
            try:
                pid = os.fork()
            except OSError as exc:
                with socket.socket(fileno=fds[0]) as sock:
                    send_frame(sock, ["harness", f"cannot fork a sample process: {exc}"])
                _force_rmtree(tmpdir)
                continue
            if pid == 0:
                ctl.close()
                _sample_main(fds[0], tmpdir, sample_config, flt)
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass
            os.close(fds[0])
            children[pid] = tmpdir
        elif msg["op"] == "reap":
            send_packet(ctl, {"exits": reap_all()})
    os._exit(0)


# --------------------------------------------------------------------------- checker (T)

class ChannelBroken(BaseException):
    """The sample process stopped answering; no test may catch its way past this."""


class HarnessError(Exception):
    """The sandbox itself could not run the sample."""


class Unsendable(TypeError):
    """The test tried to hand the program a value that cannot cross into the sandbox."""


_SAFE_MODULES_DENY = frozenset({
    "antigravity", "this", "turtle", "turtledemo", "tkinter", "idlelib", "webbrowser",
    "__hello__", "__phello__", "ensurepip", "venv", "pydoc", "lib2to3", "msilib", "winsound",
})


def _trusted_module(name):
    """The checker's own copy of a standard-library module the program imported."""
    top = name.split(".")[0]
    if top not in getattr(sys, "stdlib_module_names", ()) or top in _SAFE_MODULES_DENY:
        return None
    try:
        __import__(name)
        return sys.modules[name]
    except Exception:
        return None


class _Unbound:
    """Marks a program name the checker will not bind (e.g. a non-stdlib module)."""


class Sample:
    """The checker's end of one sample process."""

    def __init__(self, sock, config):
        self.sock = sock
        self.reader = FrameReader(sock, config["max_message_bytes"])
        self.broken = None
        self.proxies = {}

    def _fail(self, reason):
        if self.broken is None:
            self.broken = reason
        raise ChannelBroken(self.broken)

    def send(self, msg):
        if self.broken is not None:
            raise ChannelBroken(self.broken)
        try:
            send_frame(self.sock, msg)
        except OSError as exc:
            self._fail(f"sample process hung up ({exc.strerror or exc})")

    def receive(self):
        """The reply to the last request; the sample's exception is raised as a built-in one."""
        reply = self.reply()
        if reply[0] == "ok":
            return reply[1]
        _, base, name, message = reply
        cls = getattr(builtins, base, None)
        # StopIteration from the sample would silently end a test's iteration (all(map(...))).
        if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(
                cls, (StopIteration, StopAsyncIteration)):
            try:
                exc = cls(message)
            except Exception:
                exc = RuntimeError(f"{name}: {message}")
        else:
            exc = RuntimeError(f"the program raised {name}: {message}")
        raise exc

    def reply(self):
        """["ok", value] or ["exc", builtin base, type name, message]."""
        try:
            reply = self.reader.read()
        except ProtocolError as exc:
            self._fail(f"sample process sent a bad message: {exc}")
        except OSError as exc:
            self._fail(f"sample process hung up ({exc.strerror or exc})")
        if reply is None:
            self._fail("sample process died")
        if type(reply) is not list or not reply or reply[0] not in ("ok", "exc", "harness"):
            self._fail("sample process sent a bad message")
        if reply[0] == "harness":
            self.broken = "harness"
            raise HarnessError(str(reply[1:2])[:500])
        if reply[0] == "ok":
            if len(reply) != 2:
                self._fail("sample process sent a bad message")
            try:
                return ["ok", self.decode(reply[1])]
            except (ProtocolError, RecursionError, MemoryError, TypeError, ValueError) as exc:
                self._fail(f"sample process sent a bad value: {exc}")
        if len(reply) != 4 or not all(type(x) is str for x in reply[1:]):
            self._fail("sample process sent a bad message")
        return reply

    def request(self, *msg):
        self.send(list(msg))
        return self.receive()

    def decode(self, wire):
        return decode(wire, self._proxy, self._module)

    def _proxy(self, rid, name):
        if rid not in self.proxies:
            self.proxies[rid] = Remote(self, rid, name)
        return self.proxies[rid]

    def _module(self, name):
        module = _trusted_module(name)
        return _Unbound if module is None else module

    def encode(self, value):
        return encode(value, self._encode_fallback)

    def _encode_fallback(self, value):
        if type(value) is Remote and object.__getattribute__(value, "_sample") is self:
            rid = object.__getattribute__(value, "_rid")
            return {"r": [rid, ""]}
        name = builtin_name(value, vars(builtins))
        if name is not None:
            return {"n": name}
        raise Unsendable(f"a {type(value).__name__} cannot be passed to the sandboxed program")


class Remote:
    """An object that lives in the sample process. Only operations that do not hand the test's
    own values to the sample are forwarded; ``==``, ``<``, ``in``, arithmetic and hashing stay
    local (identity), so the sample never sees what it is compared with."""

    __slots__ = ("_sample", "_rid", "_name")

    def __init__(self, sample, rid, name):
        object.__setattr__(self, "_sample", sample)
        object.__setattr__(self, "_rid", rid)
        object.__setattr__(self, "_name", name)

    def _ask(self, op, *args):
        sample = object.__getattribute__(self, "_sample")
        return sample.request(op, object.__getattribute__(self, "_rid"), *args)

    def __call__(self, *args, **kwargs):
        sample = object.__getattribute__(self, "_sample")
        return self._ask("call", sample.encode(list(args)), sample.encode(kwargs))

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name)

    def __setattr__(self, name, value):
        self._ask("setattr", name, object.__getattribute__(self, "_sample").encode(value))

    def __getitem__(self, key):
        return self._ask("getitem", object.__getattribute__(self, "_sample").encode(key))

    def __setitem__(self, key, value):
        sample = object.__getattribute__(self, "_sample")
        self._ask("setitem", sample.encode(key), sample.encode(value))

    def __len__(self):
        n = self._ask("len")
        if type(n) is not int:
            raise TypeError("len() of a sandboxed object is not an int")
        return n

    def __bool__(self):
        return self._ask("bool") is True

    def __iter__(self):
        items = self._ask("iter")
        if type(items) is not list:
            raise TypeError("iteration over a sandboxed object failed")
        return iter(items)

    def __str__(self):
        text = self._ask("str")
        return text if type(text) is str else ""

    def __repr__(self):
        return f"<sandboxed {object.__getattribute__(self, '_name') or 'object'}>"


def _test_names(tree):
    """(names the test reads, names it binds anywhere)."""
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded, bound


def _binds(stmt, name):
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return stmt.name == name
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name).split(".")[0] == name for a in stmt.names)
    targets = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    return any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t))


def _top_level_defs(tree):
    return {s.name for s in tree.body
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _failure_text(exc, test):
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<test>":
            lines = test.splitlines()
            if frame.lineno and 0 < frame.lineno <= len(lines):
                text += f" (test line {frame.lineno}: {lines[frame.lineno - 1].strip()[:120]})"
            break
    return text[:500]


class Deadline(BaseException):
    """The sample's time is up."""


class TestPlan:
    """A compiled test and the names it takes from the program (built once per distinct test)."""

    def __init__(self, test):
        self.test = test
        tree = ast.parse(test, "<test>")
        self.code = compile(tree, "<test>", "exec")
        loaded, bound = _test_names(tree)
        self.free = frozenset(loaded - bound)
        self.builtin_free = self.free & _BUILTIN_NAMES
        self.program_free = self.free - _BUILTIN_NAMES


_BUILTIN_NAMES = frozenset(dir(builtins))


def run_check(job, plan, spawn, config):
    """(status, detail) of one sample; ``spawn()`` returns a socket to a fresh sample process."""
    samples = []
    try:
        return _run_check(job, plan, spawn, config, samples)
    finally:
        for sample in samples:
            sample.sock.close()


def _run_check(job, plan, spawn, config, samples):
    program, entry_point = job["program"], job["entry_point"]
    wanted = set(plan.program_free)
    helper_names, prefix = set(), None
    try:
        main = Sample(spawn(), config)
        samples.append(main)
        if entry_point is not None:
            helper_names = wanted - {entry_point}
            wanted.add(entry_point)
        elif not wanted and plan.builtin_free:
            # The function under test has a builtin's name (MBPP 126 defines `sum`). Only then
            # may a program definition shadow a builtin the test uses.
            wanted = set(plan.builtin_free & _top_level_defs(_parse(program)))
        if helper_names:
            # Helpers the test uses (e.g. HumanEval's encode_cyclic) come from a second process
            # that runs only the statements before the entry point: later code cannot redefine them.
            body = _parse(program).body
            stop = next((i for i, stmt in enumerate(body) if _binds(stmt, entry_point)), None)
            if stop:
                prefix = Sample(spawn(), config)
                samples.append(prefix)
                prefix.send(["exec", program, stop, sorted(helper_names)])
                wanted -= helper_names
        main.send(["exec", program, None, sorted(wanted)])
        bindings = {}
        for sample, names in ((prefix, helper_names), (main, wanted)):
            if sample is None:
                continue
            reply = sample.reply()
            if reply[0] == "exc":
                return "error", f"the program raised {reply[2]}: {reply[3]}"[:500]
            found = reply[1]
            if type(found) is not dict:
                sample._fail("sample process sent a bad message")
            bindings.update({k: v for k, v in found.items() if k in names and v is not _Unbound})
        if prefix is not None:  # helpers the prefix does not define come from the whole program
            missing = sorted(helper_names - set(bindings))
            if missing:
                found = main.request("lookup", missing)
                if type(found) is not dict:
                    main._fail("sample process sent a bad message")
                bindings.update({k: v for k, v in found.items()
                                 if k in missing and v is not _Unbound})
    except HarnessError as exc:
        return "error", f"sandbox: {exc}"
    except ChannelBroken as exc:  # while loading the program, before the test began
        return "error", str(exc)
    except SyntaxError as exc:
        return "error", f"SyntaxError: {exc}"[:500]
    namespace = {"__builtins__": builtins, "__name__": "__test__"}
    namespace.update(bindings)
    try:
        exec(plan.code, namespace)
        if entry_point is not None:
            check = namespace.get("check")
            if not callable(check) or isinstance(check, Remote):
                return "error", "the test defines no check(candidate) function"
            if entry_point not in bindings:
                return "failed", f"the program does not define {entry_point!r}"
            check(bindings[entry_point])
    except Deadline:
        raise
    except HarnessError as exc:
        return "error", f"sandbox: {exc}"
    except BaseException as exc:  # noqa: B036 -- a test failure of any kind
        for sample in samples:
            if sample.broken:
                return "failed", sample.broken
        if isinstance(exc, Unsendable):
            return "error", _failure_text(exc, plan.test)
        return "failed", _failure_text(exc, plan.test)
    for sample in samples:
        if sample.broken:
            return "failed", sample.broken
    return "passed", ""


def _parse(program):
    try:
        return ast.parse(program, "<program>")
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        raise SyntaxError(f"{type(exc).__name__}: {exc}") from None


# --------------------------------------------------------------------------- worker (W)

def _unshare_network():
    try:
        if _lib().unshare(CLONE_NEWNET) == 0:
            return True, ""
        err = ctypes.get_errno()
        return False, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}"
    except (AttributeError, OSError) as exc:
        return False, f"unshare is not available: {exc}"


def _paths_to_rebind(private):
    """Interpreter and library paths that a private mount at ``private`` would hide."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable),
             os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    inside = sorted(p for p in paths if p.startswith(private + os.sep))
    return [p for i, p in enumerate(inside) if not any(p.startswith(q + os.sep) for q in inside[:i])]


# What a zygote running as real root keeps; each sample drops them all with setuid(nobody).
_ZYGOTE_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                "CAP_KILL")


def _bwrap_command(bwrap, with_size, config, as_root):
    """bwrap arguments for the zygote: read-only root, private /tmp and /dev/shm, /root and
    /home masked (the interpreter's paths bound back), new pid/net/ipc/uts namespaces. As root:
    no user namespace, so samples can become the real, unprivileged uid 65534; otherwise a user
    namespace maps uid 65534 to the caller."""
    size = str(config["tmpfs_mb"] << 20)
    cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    masked = [d for d in ("/root", "/home") if os.path.isdir(d)]
    for mount in ["/tmp", "/dev/shm"] + masked:
        cmd += (["--size", size] if with_size and mount not in masked else []) + ["--tmpfs", mount]
        for path in _paths_to_rebind(mount):
            parts = path[len(mount) + 1:].split(os.sep)[:-1]
            for i in range(len(parts)):  # traversable by uid 65534 (bwrap's default is 0700)
                cmd += ["--perms", "0755", "--dir", os.path.join(mount, *parts[:i + 1])]
            cmd += ["--ro-bind", path, path]
    for mount in ["/dev"] + masked:
        cmd += ["--remount-ro", mount]
    if as_root:
        cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--cap-drop", "ALL"]
        for cap in _ZYGOTE_CAPS:
            cmd += ["--cap-add", cap]
    else:
        cmd += ["--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                "--cap-drop", "ALL"]
    cmd += ["--die-with-parent", "--new-session", "--clearenv",
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "HOME", "/tmp", "--chdir", "/tmp", "--"]
    return cmd


class Zygote:
    """The worker's handle on its zygote process."""

    def __init__(self, source, config):
        self.source, self.config = source, config
        self.proc = self.ctl = None
        self.reaping = False
        self.cpu_seconds = 0.0  # used by the zygotes so far and their samples (bwrap hides it)
        self.tmp_base = config["tmp_base"]  # made by the host, used when bwrap is missing
        self.info = {}
        self.bwrap_reason = ""
        self.start()

    def _launch(self, prefix, zconfig):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = prefix + [sys.executable, "-I", "-c", self.source, "zygote", str(theirs.fileno()),
                        json.dumps(zconfig)]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
            theirs.close()
            ready, _, _ = select.select([ours], [], [], 30)
            hello = recv_packet(ours)[0] if ready else None
            if hello is None:
                proc.kill()
                proc.wait()
                ours.close()
                err.seek(0)
                return None, err.read().decode(errors="replace").strip()[-500:] or "no output"
        self.proc, self.ctl, self.info = proc, ours, hello
        return hello, ""

    def start(self):
        self.reaping = False
        zconfig = dict(self.config, private_tmp=None, tmp_base=None)
        bwrap = self.config["bwrap"]
        if bwrap:
            path = shutil.which(bwrap) if os.sep not in bwrap else bwrap
            if path is None or not os.access(path, os.X_OK):
                self.bwrap_reason = f"{bwrap!r} not found (install the Debian package bubblewrap)"
            else:
                zconfig["private_tmp"] = "/tmp"
                modes = ([True] if os.getuid() == 0 else []) + [False]
                for as_root in modes:
                    for with_size in (True, False):
                        cmd = _bwrap_command(path, with_size, self.config, as_root)
                        hello, why = self._launch(cmd, zconfig)
                        if hello is not None and as_root and not hello["drop_uid"]:
                            self.stop()
                            hello, why = None, "uid 65534 cannot read the interpreter"
                        if hello is not None:
                            self.bwrap_reason = ""
                            return
                        self.bwrap_reason = f"bwrap failed: {why}"
        else:
            self.bwrap_reason = "disabled"
        zconfig = dict(self.config, private_tmp=None, tmp_base=self.tmp_base)
        hello, why = self._launch([], zconfig)
        if hello is None:
            raise RuntimeError(f"the sandbox zygote did not start: {why}")

    @property
    def bwrap(self):
        return not self.bwrap_reason

    def spawn(self, cpu_seconds, new_job):
        ours, theirs = socket.socketpair()
        try:
            send_packet(self.ctl, {"op": "spawn", "cpu_seconds": cpu_seconds, "new_job": new_job},
                        [theirs.fileno()])
        finally:
            theirs.close()
        return ours

    def reap(self):
        """Ask the zygote to kill and reap this job's sample processes (answer via ``settle``)."""
        try:
            send_packet(self.ctl, {"op": "reap"})
            self.reaping = True
        except OSError:
            self.restart()

    def settle(self, wait):
        """Exit descriptions of the last job's samples once reaped; None (and a fresh zygote)
        if the zygote did not manage within ``wait`` seconds."""
        if not self.reaping:
            return []
        self.reaping = False
        try:
            ready, _, _ = select.select([self.ctl], [], [], wait)
            if ready:
                msg, _ = recv_packet(self.ctl)
                if msg is not None:
                    return msg["exits"]
        except OSError:
            pass
        self.restart()
        return None

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        if self.proc is not None:
            try:
                send_packet(self.ctl, {"op": "exit"})
                deadline = time.monotonic() + 2.0
                while select.select([self.ctl], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    msg, _ = recv_packet(self.ctl)  # skips an unread reap answer
                    if msg is None or "cpu" in msg:
                        self.cpu_seconds += msg["cpu"] if msg else 0.0
                        break
                self.proc.wait(timeout=1.0)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.ctl.close()
            self.proc = None
            self.reaping = False


class Checker:
    """Runs jobs in the worker: the test here, the program in sample processes from the zygote."""

    def __init__(self, zygote, config):
        self.zygote, self.config = zygote, config
        self.plans = {}
        self.armed = self.expired = self.new_job = False
        self.seccomp = bool(zygote.info.get("seccomp"))
        signal.signal(signal.SIGALRM, self._alarm)

    def _alarm(self, _signum, _frame):
        if self.armed:
            self.expired = True
            raise Deadline()

    def _disarm(self):
        while True:
            try:
                self.armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                return
            except Deadline:  # fired before `armed` was cleared
                continue

    def plan(self, test):
        if test not in self.plans:
            if len(self.plans) >= 512:
                self.plans.clear()
            try:
                self.plans[test] = TestPlan(test)
            except Exception as exc:
                self.plans[test] = f"the test does not compile: {type(exc).__name__}: {exc}"[:500]
        return self.plans[test]

    def spawn(self, cpu_seconds):
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            sock = self.zygote.spawn(cpu_seconds, new_job=self.new_job)
            self.new_job = False
            return sock
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def run(self, job):
        """(status, detail, seconds) for one job; returns soon after ``job["timeout"]``."""
        self.zygote.settle(wait=1.0)  # the previous job's samples are gone before this one starts
        start = time.monotonic()
        plan = self.plan(job["test"])
        if isinstance(plan, str):
            return "error", plan, time.monotonic() - start
        cpu_seconds = int(math.ceil(job["timeout"])) + 1
        self.expired, self.new_job = False, True
        status, detail = "error", "sandbox worker: no verdict"
        try:
            try:
                self.armed = True
                # Re-fires every 50 ms, so a test that swallows one Deadline still stops.
                signal.setitimer(signal.ITIMER_REAL, job["timeout"], 0.05)
                status, detail = run_check(job, plan, lambda: self.spawn(cpu_seconds),
                                           self.config)
            finally:
                self._disarm()
        except Deadline:
            pass
        except OSError as exc:
            status, detail = "error", f"sandbox worker: {exc}"[:500]
        if self.expired:
            status, detail = "timeout", f"exceeded the {job['timeout']:g} s limit"
        duration = time.monotonic() - start
        # A sample that passed has exited on end-of-input (it cannot fork under seccomp): the
        # zygote reaps it with the next job. Anything else is killed now.
        if status != "passed" or not self.seccomp:
            self.zygote.reap()
        if status == "failed" and detail.startswith("sample process died"):
            exits = self.zygote.settle(wait=1.0)
            if exits:
                detail += f" ({', '.join(e for e in exits if e != 'running') or 'killed'})"
        return status, detail, duration


def _worker_main(host_fd, config):
    host = socket.socket(fileno=host_fd)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_DUMPABLE, 0)
    network, network_reason = _unshare_network() if config["network_namespace"] else (
        False, "disabled")
    with open(__file__, encoding="utf-8") as fh:
        source = fh.read()
    zygote = Zygote(source, config)
    bwrap = zygote.bwrap
    dropped = bool(zygote.info.get("drop_uid"))
    layers = {
        "process_per_sample": True,
        "split_checker": True,
        "rlimits": True,
        "clean_env": True,
        "temp_dir": True,
        "network_namespace": network or bwrap,
        "seccomp": bool(zygote.info.get("seccomp")),
        "bwrap": bwrap,
        "unprivileged_uid": bwrap or dropped,
    }
    reasons = {}
    if not layers["network_namespace"]:
        reasons["network_namespace"] = network_reason
    if not layers["seccomp"]:
        reasons["seccomp"] = zygote.info.get("seccomp_reason", "")
    if not bwrap:
        reasons["bwrap"] = zygote.bwrap_reason
    if not layers["unprivileged_uid"]:
        reasons["unprivileged_uid"] = (
            "without bwrap, samples run as the caller" if os.getuid() != 0 else
            "without bwrap, samples stay root: uid 65534 cannot read this Python installation")
    send_frame(host, {"op": "hello", "layers": layers, "reasons": reasons})
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    import resource
    cap = config["checker_memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    checker = Checker(zygote, config)
    jobs = FrameReader(host, 1 << 30)
    try:
        while True:
            msg = jobs.read()
            if msg is None or msg.get("op") == "exit":
                break
            try:
                status, detail, duration = checker.run(msg)
            except Exception as exc:  # keep serving; report the job as a harness error
                status, detail, duration = "error", f"sandbox worker: {exc}"[:500], 0.0
                zygote.restart()
            send_frame(host, {"op": "result", "id": msg["id"], "status": status,
                              "detail": detail, "duration": duration})
    finally:
        zygote.stop()
        try:
            send_frame(host, {"op": "bye", "sandbox_cpu": zygote.cpu_seconds})
        except OSError:
            pass
    os._exit(0)


def main(argv):
    role, fd, config = argv[0], int(argv[1]), json.loads(argv[2])
    if role == "worker":
        _worker_main(fd, config)
    elif role == "zygote":
        _zygote_main(fd, config)
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
