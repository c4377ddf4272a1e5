"""Drive a real ``crash`` process from outside: :class:`CrashProcess`, a :class:`Port`.

How it talks to crash
---------------------
crash runs as ``crash -s --no_crashrc VMLINUX VMCORE`` with its stdin and stdout on
pipes (stderr merged into stdout).  With stdin not a tty crash reads one command per
line with ``fgets``, prints no prompt (``-s``), sends its error messages to stdout too
(``error_fp`` is stdout by default), and flushes stdout before it reads the next line.
After every command the adapter sends a marker command whose only output is a line
unique to this session and sequence number; a command's answer is everything before its
marker.  Because the markers are queued on the same pipe, any number of commands can be
written at once and their answers read back in order (:meth:`CrashProcess.batch`).
The marker is ``help TOKEN`` (crash answers ``No help data for "TOKEN" is available.``
without forking) when a probe at start-up shows this crash answers exactly that, else
``echo TOKEN`` (crash runs it through /bin/sh: ~1.5 ms per command instead of ~0.1).

Port methods
------------
``read`` = ``rd -64 -x`` over the covering aligned words (``-x``: no ASCII column);
``symbol_address`` / ``address_symbol`` = ``sym NAME`` / ``sym ADDR`` (offsets returned
as ``name+0xHEX``); ``type_size`` = ``p sizeof(struct X)`` (then ``union X``, ``X``);
``member_offset`` = ``p (unsigned long)&((T *)0)->a.b``; ``member_type`` = ``gdb whatis
((T *)0)->a.b`` (gives the declared type: ``atomic_long_t``, ``char [16]``).  Symbol and
type answers (including "no such") are cached for the session: they cannot change.

Errors
------
* crash error -> :class:`CrashCommandError` when the *last* non-blank line of the answer
  is an error line (``CMD: message``, ``crash: ...``, ``gdb: ...`` or one of gdb's own
  messages such as ``No symbol "x" in current context.``).  crash ends a command at a
  fatal error, so a final error line means the command failed; output printed before it
  is attached as ``.partial`` and the whole answer as ``.output``.  Error lines in the
  middle of an answer (``foreach`` reporting one task) do not raise; pass
  ``check=False`` to :meth:`CrashProcess.command` to never raise on crash errors.
* no answer within ``timeout`` seconds -> :class:`CrashTimeout`.  crash installs its
  SIGINT handler (abort the command, back to the prompt) only when stdin is a tty, so
  over pipes there is no way to interrupt one command: the adapter kills crash's process
  group and starts a fresh crash on the next call (costs one start-up, ~7-10 s on the lab
  dumps; the type/symbol caches are kept).  Nothing of the slow command can leak into a
  later answer.  A batch that times out carries the answers it got as ``.completed``.
* crash exited (killed, or failed to start) -> :class:`CrashDied` with the exit status
  and crash's last output lines, at once (EOF on its stdout; no waiting for a timeout);
  the next call starts a fresh crash.  Its ``output`` is all crash printed,
  ``starting`` says whether it died while starting (``ports/diagnose.py`` explains
  those in one line).  After :meth:`CrashProcess.close` every call raises CrashDied.
* a refused command or argument -> :class:`BadArgument`, before anything is sent.
* anything else interrupting an exchange (KeyboardInterrupt) kills crash too, since its
  unread answers would otherwise be taken for the next command's.

Not thread-safe: use one CrashProcess per thread.
"""

import codecs
import errno
import os
import secrets
import select
import shlex
import signal
import subprocess
import time
from ..compat import Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..core.errors import (BadArgument, CrashCommandError, CrashDied, CrashExtError,
                           CrashTimeout, MemoryReadError)
from ..core.excluded import explain
from ..core.live import reads_running_kernel
from ..core.port import Port
from . import check_command
from .commandport import SET_C_LANGUAGE, CommandTypes, find_error
from .typestore import TypeStore

__all__ = ["CrashProcess"]

_READ_CHUNK = 1 << 16


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    """Let crash run up to ``size`` bytes ahead of the reader (Linux F_SETPIPE_SZ; the
    default 64 KiB stalls crash whenever the reader works on what it got, e.g. while
    back traces are read as they arrive).  Silently keeps the default elsewhere."""
    try:
        import fcntl
        setsz = getattr(fcntl, "F_SETPIPE_SZ", 1031)
        try:
            with open("/proc/sys/fs/pipe-max-size") as f:
                size = min(size, int(f.read()))
        except (OSError, ValueError):
            pass
        fcntl.fcntl(fd, setsz, size)
    except (ImportError, OSError, ValueError):
        pass


def crash_binary_version(path: str) -> Optional[str]:
    """Return the version ``path --version`` prints (``8.0.6``), None when it cannot be
    run or prints no ``crash X.Y.Z`` line."""
    try:
        out = subprocess.run([path, "--version"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=60).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return None
    for word in out.split("crash ")[1:]:
        v = word.split()[0] if word.split() else ""
        if v[:1].isdigit() and v.count(".") >= 1:
            return v
    return None


class CrashProcess(CommandTypes, Port):
    """A :class:`Port` backed by one ``crash -s VMLINUX VMCORE`` process.

    ``timeout`` bounds each command's answer (and, in :meth:`batch`, the wait for each
    next answer); ``startup_timeout`` bounds crash's start-up.  crash is started on the
    first call (or :meth:`start`).  Use as a context manager or call :meth:`close`.

    Attributes for diagnostics: ``startup_output`` (what crash printed while starting),
    ``startup_seconds`` (last start-up time), ``starts`` (how many crash processes were
    started), ``pid`` (current crash pid or None).
    """

    #: probe for (and then use) the fork-free ``help`` marker; False keeps ``echo``
    try_help_marker = True

    def __init__(self, vmlinux, vmcore, crash: str = "crash", timeout: float = 60.0,
                 startup_timeout: float = 300, extra_args: Sequence[str] = ()):
        # None for either: crash's own defaults (the running kernel, /dev/crash or /proc/kcore)
        self.vmlinux = os.fspath(vmlinux) if vmlinux is not None else None
        self.vmcore = os.fspath(vmcore) if vmcore is not None else None
        self.crash = os.fspath(crash)
        self.timeout = float(timeout)
        self.startup_timeout = float(startup_timeout)
        self.extra_args = list(extra_args)
        self.startup_output = ""
        self.startup_seconds = None  # type: Optional[float]
        self.starts = 0
        self._proc = None  # type: Optional[subprocess.Popen]
        self._buf = bytearray()
        self._seq = 0
        self._nonce = secrets.token_hex(6)
        self._closed = False
        self._help_marker = False
        self._cache = None  # type: Optional[Dict[tuple, object]]

    def crash_version(self) -> Optional[str]:
        """Return the version crash reports of itself (``8.0.6``), None when it prints
        none; asked once (``crash --version``), for messages."""
        if not hasattr(self, "_version"):
            self._version = crash_binary_version(self.crash)
        return self._version

    def memory_fixed(self) -> bool:
        """Return True when crash reads a dump file, False on the running kernel (no dump
        file, or ``/proc/kcore`` / a ``/dev`` file given as the dump)."""
        return not reads_running_kernel(self.vmcore)

    def _open_type_store(self):
        """The vmlinux's type store (none on a live system)."""
        return TypeStore.for_vmlinux(self.vmlinux, live=not self.memory_fixed())

    # ------------------------------------------------------------------ process

    @property
    def pid(self) -> Optional[int]:
        """The running crash's pid, or None."""
        return self._proc.pid if self._proc is not None else None

    def argv(self) -> List[str]:
        """Return the command line used to start crash."""
        files = [f for f in (self.vmlinux, self.vmcore) if f is not None]
        return [self.crash, "-s", "--no_crashrc"] + self.extra_args + files

    def start(self) -> None:
        """Start crash unless it runs.  Raises CrashDied (crash exited or could not be
        run; message carries its output) or CrashTimeout (start-up too slow)."""
        if self._closed:
            raise CrashDied("crash session is closed")
        if self._proc is not None:
            return
        t0 = time.monotonic()
        env = dict(os.environ)
        env.update({"LC_ALL": "C", "TERM": "dumb", "PAGER": "cat", "CRASHPAGER": "cat"})
        try:
            self._proc = subprocess.Popen(
                self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, bufsize=0, start_new_session=True, env=env,
                close_fds=True)
        except OSError as e:
            self._proc = None
            raise CrashDied("cannot run %s: %s" % (self.crash, e))
        self.starts += 1
        self._buf = bytearray()
        self._help_marker = False
        os.set_blocking(self._proc.stdout.fileno(), False)
        _grow_pipe(self._proc.stdout.fileno())
        os.set_blocking(self._proc.stdin.fileno(), False)
        try:
            out = self._exchange([], self.startup_timeout, starting=True)
            self._probe_help_marker()
            self._exchange([SET_C_LANGUAGE], self.timeout)   # our own crash: types in C
        except CrashTimeout:
            raise CrashTimeout("crash did not start within %gs: %s"
                               % (self.startup_timeout, " ".join(self.argv())))
        except CrashExtError:
            raise
        except BaseException:
            self._kill()
            raise
        self.startup_output = out[0]
        self.startup_seconds = time.monotonic() - t0

    def close(self) -> None:
        """End crash (politely, then by signal) after writing new type facts to the
        store.  Later calls raise CrashDied."""
        if not self._closed:
            self.flush_types()
        self._closed = True
        p = self._proc
        if p is None:
            return
        try:
            if p.poll() is None:
                try:
                    p.stdin.write(b"q\n")
                except OSError:
                    pass
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self._kill()

    def __enter__(self) -> "CrashProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if self._proc is not None:
                self._kill()
        except Exception:
            pass

    def _kill(self) -> None:
        """Kill crash's process group (only ours: it was started in its own session)."""
        p, self._proc = self._proc, None
        self._buf = bytearray()
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    p.kill()
                except OSError:
                    pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass

    def _drain(self, fd: int, quiet: float = 0.2, limit: float = 2.0) -> None:
        """Append to the buffer what crash wrote before it exited and we had not read
        (its error, when our write met a closed pipe first).  Returns at end of file,
        after ``quiet`` seconds without output, or after ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while True:
            left = min(quiet, deadline - time.monotonic())
            if left <= 0:
                return
            try:
                r, _, _ = select.select([fd], [], [], left)
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return
            if not r:
                return
            try:
                data = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            self._buf += data

    def _died(self, what: str) -> CrashDied:
        """Reap crash, build the CrashDied to raise (exit status + crash's last lines)."""
        p = self._proc
        rc = None
        if p is not None:
            try:
                rc = p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                rc = None
            self._drain(p.stdout.fileno())
        text = bytes(self._buf).decode("utf-8", "replace")
        tail = text.strip().splitlines()[-8:]
        self._kill()
        if rc is None:
            status = "unknown status"
        elif rc < 0:
            try:
                status = "killed by %s" % signal.Signals(-rc).name
            except ValueError:
                status = "killed by signal %d" % -rc
        else:
            status = "exit status %d" % rc
        msg = "crash %s (%s)" % (what, status)
        if tail:
            msg += ": " + " | ".join(l.strip() for l in tail if l.strip())
        msg += "; the next call starts a new crash"
        err = CrashDied(msg)
        err.output = text                 # all crash printed (diagnose.py reads it)
        err.starting = what == "failed to start"
        err.status = rc
        return err

    # ----------------------------------------------------------------- protocol

    def _marker(self) -> Tuple[bytes, bytes, bytes]:
        """Return (marker command line, the unique tail crash answers it with, the fixed
        text the answer starts with).

        Two markers: ``echo TOKEN`` (crash runs it through ``/bin/sh``: ~1.4 ms, output
        exactly ``TOKEN``) is always safe; ``help TOKEN`` answers ``No help data for
        "TOKEN" is available.`` without forking (~0 ms) and is used once a probe at
        start-up has shown this crash answers it in exactly that form.
        """
        self._seq += 1
        tok = "ceMARK_%s_%d" % (self._nonce, self._seq)
        if self._help_marker:
            return (("help %s\n" % tok).encode(), ('%s" is available.\n' % tok).encode(),
                    b'No help data for "')
        return ("echo %s\n" % tok).encode(), ("%s\n" % tok).encode(), b""

    def _probe_help_marker(self) -> None:
        """Switch to the cheap ``help`` marker if crash answers it exactly as expected."""
        if not self.try_help_marker:
            return
        tok = "ceMARK_%s_probe" % self._nonce
        ans = self._exchange(["help %s" % tok], self.timeout)[0]
        self._help_marker = ans == 'No help data for "%s" is available.\n' % tok

    def _exchange(self, cmds: Sequence[str], timeout: float,
                  starting: bool = False,
                  on_text: Optional[Dict[int, Callable[[str], None]]] = None) -> List[str]:
        """Send ``cmds`` (each followed by a marker) and return their raw answers.

        With ``starting`` a lone marker is sent first and its answer (the start-up
        output) is returned as element 0.  ``on_text``: {index in ``cmds``: callback}
        -- the callback gets that command's answer in pieces as crash prints it (the
        pieces join to the answer), so the caller can work while crash still runs.
        Raises CrashTimeout (crash is killed), CrashDied.
        """
        p = self._proc
        if p is None:
            raise CrashDied("crash is not running")
        if p.poll() is not None:
            raise self._died("exited" if not starting else "failed to start")
        payload = bytearray()
        tokens = []
        if starting:
            line, tok, pre = self._marker()
            payload += line
            tokens.append((tok, pre))
        for c in cmds:
            line, tok, pre = self._marker()
            payload += c.encode() + b"\n" + line
            tokens.append((tok, pre))
        pending = memoryview(bytes(payload))
        fin, fout = p.stdout.fileno(), p.stdin.fileno()
        answers = []  # type: List[str]
        scan = 0
        sinks = {}  # type: Dict[int, Callable[[str], None]]
        for i, cb in (on_text or {}).items():
            sinks[i + (1 if starting else 0)] = cb
        fed = 0        # bytes of the current answer already given to its callback
        dec = None
        deadline = time.monotonic() + timeout
        while len(answers) < len(tokens):
            tok, pre = tokens[len(answers)]
            pos = self._buf.find(tok, max(0, scan - len(tok)))
            if pos >= 0:
                head = bytes(self._buf[:pos])
                del self._buf[:pos + len(tok)]
                if pre and head.endswith(pre):
                    head = head[:-len(pre)]
                cb = sinks.get(len(answers))
                answers.append(head.decode("utf-8", "replace"))
                if cb is not None:
                    if dec is None:
                        dec = codecs.getincrementaldecoder("utf-8")("replace")
                    piece = dec.decode(head[fed:], final=True)
                    if piece:
                        cb(piece)
                fed, dec = 0, None
                scan = 0
                deadline = time.monotonic() + timeout
                continue
            cb = sinks.get(len(answers))
            if cb is not None:
                # what cannot be part of the marker yet to come is the answer's
                safe = len(self._buf) - len(tok) - len(pre)
                if safe > fed:
                    if dec is None:
                        dec = codecs.getincrementaldecoder("utf-8")("replace")
                    piece = dec.decode(bytes(self._buf[fed:safe]))
                    fed = safe
                    if piece:
                        cb(piece)
            scan = len(self._buf)
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                e = CrashTimeout("crash did not answer within %gs (crash killed; the "
                                 "next call starts a new one)" % timeout)
                e.completed = answers[1:] if starting else answers
                raise e
            try:
                r, w, _ = select.select([fin], [fout] if pending else [], [], left)
            except InterruptedError:
                continue
            if w:
                try:
                    n = os.write(fout, pending[:_READ_CHUNK])
                    pending = pending[n:]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    raise self._died("exited" if not starting else "failed to start")
            if r:
                try:
                    data = os.read(fin, _READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    raise self._died("exited" if not starting else "failed to start")
                self._buf += data
        return answers

    def _run(self, cmds: Sequence[str], timeout: Optional[float],
             on_text: Optional[Dict[int, Callable[[str], None]]] = None) -> List[str]:
        if self._closed:
            raise CrashDied("crash session is closed")
        if self._proc is not None and self._proc.poll() is not None:
            raise self._died("exited")
        self.start()
        try:
            return self._exchange(cmds, self.timeout if timeout is None else timeout,
                                  on_text=on_text)
        except CrashExtError:
            raise
        except BaseException:
            # interrupted (e.g. KeyboardInterrupt) with answers unread: crash's output is
            # out of step with our commands, so end it; the next call starts a new one
            self._kill()
            raise

    # ----------------------------------------------------------------- commands

    def command(self, cmd: str, check: bool = True, timeout: Optional[float] = None) -> str:
        """Run one crash command; return its output text.

        Raises BadArgument (refused by :func:`check_command`), CrashCommandError (answer
        ends in a crash error; ``.output``/``.partial`` attached; not with
        ``check=False``), CrashTimeout, CrashDied.
        """
        c = check_command(cmd)
        out = self._run([c], timeout)[0]
        if check:
            self._raise_for(c, out)
        return out

    batches_commands = True
    streams_commands = True

    def batch(self, cmds: Sequence[str], check: bool = True,
              timeout: Optional[float] = None,
              on_text: Optional[Dict[int, Callable[[str], None]]] = None
              ) -> List[Union[str, CrashCommandError]]:
        """Run several commands in one write; return their outputs in order.

        Every command is validated first (BadArgument before anything is sent).  A
        command crash rejects yields a CrashCommandError *in its slot* (the others still
        run); with ``check=False`` its raw text is returned instead.  ``timeout``
        applies to each answer.  ``on_text``: {index: callback} to get a command's
        answer in pieces while crash prints it (see :meth:`command_stream`).  Raises
        CrashTimeout / CrashDied for the whole batch.
        """
        cs = [check_command(c) for c in cmds]
        if not cs:
            return []
        outs = self._run(cs, timeout, on_text=on_text)
        if not check:
            return list(outs)
        res = []  # type: List[Union[str, CrashCommandError]]
        for c, o in zip(cs, outs):
            try:
                self._raise_for(c, o)
                res.append(o)
            except CrashCommandError as e:
                res.append(e)
        return res

    def command_stream(self, cmd: str, on_text: Callable[[str], None], check: bool = True,
                       timeout: Optional[float] = None) -> str:
        """Run one crash command as :meth:`command` does, also giving its answer to
        ``on_text`` in pieces as crash prints it (the pieces join to the answer), so
        that the caller works on a long answer while crash is still producing it.  An
        exception from ``on_text`` ends crash (its answer would be left unread)."""
        c = check_command(cmd)
        out = self._run([c], timeout, on_text={0: on_text})[0]
        if check:
            self._raise_for(c, out)
        return out

    @staticmethod
    def _raise_for(cmd: str, out: str) -> None:
        err = find_error(cmd, out)
        if err is not None:
            e = CrashCommandError(explain(err[0]))
            e.output = out
            e.partial = err[1]
            e.command = cmd
            raise e

    # ------------------------------------------------------------------- memory

    def read(self, addr: int, size: int) -> bytes:
        """Return ``size`` bytes at kernel virtual ``addr`` (via ``rd -64 -x`` over the
        covering 8-byte words, which touch the same pages).  Raises MemoryReadError when
        crash cannot read some of them, BadArgument for a bad addr/size."""
        addr, size = int(addr), int(size)
        if addr < 0 or addr >= 1 << 64 or size < 0 or addr + size > 1 << 64:
            raise BadArgument("bad read range: %#x + %d" % (addr, size))
        if size == 0:
            return b""
        start = addr & ~7
        words = (addr + size - start + 7) // 8
        try:
            out = self.command("rd -64 -x %x %d" % (start, words))
        except CrashCommandError as e:
            raise MemoryReadError("cannot read %d bytes at %#x: %s" % (size, addr,
                                                                      explain(e)))
        data = self._parse_rd64(out, start, words)
        if data is None:
            raise MemoryReadError("cannot read %d bytes at %#x: unexpected rd output: %r"
                                  % (size, addr, out[:200]))
        off = addr - start
        return data[off:off + size]

    def read_many(self, ranges: Sequence[Tuple[int, int]]) -> List[Optional[bytes]]:
        """Return :meth:`read` of each ``(address, size)`` (None where it fails), all
        asked in one :meth:`batch`."""
        plan = []  # type: List[Optional[Tuple[int, int, int, int]]]
        cmds = []  # type: List[str]
        for addr, size in ranges:
            addr, size = int(addr), int(size)
            if addr < 0 or size <= 0 or addr + size > 1 << 64:
                plan.append(None)
                continue
            start = addr & ~7
            words = (addr + size - start + 7) // 8
            plan.append((addr, size, start, words))
            cmds.append("rd -64 -x %x %d" % (start, words))
        outs = iter(self.batch(cmds) if cmds else [])
        res = []  # type: List[Optional[bytes]]
        for p in plan:
            if p is None:
                res.append(None)
                continue
            addr, size, start, words = p
            out = next(outs)
            data = self._parse_rd64(out, start, words) if isinstance(out, str) else None
            res.append(data[addr - start:addr - start + size] if data is not None else None)
        return res

    @staticmethod
    def _parse_rd64(out: str, start: int, words: int) -> Optional[bytes]:
        """Return the bytes of ``rd -64 -x`` output if it covers exactly ``words``
        contiguous words from ``start``; None otherwise."""
        vals = []  # type: List[int]
        for line in out.splitlines():
            if ":" not in line:
                continue
            a, _, rest = line.partition(":")
            try:
                la = int(a.strip(), 16)
            except ValueError:
                return None
            if la != start + 8 * len(vals):
                return None
            try:
                vals.extend(int(t, 16) for t in rest.split())
            except ValueError:
                return None
        if len(vals) != words:
            return None
        return b"".join(v.to_bytes(8, "little") for v in vals)

    def __repr__(self) -> str:
        return "CrashProcess(%s, pid=%s)" % (" ".join(shlex.quote(a) for a in self.argv()),
                                             self.pid)
