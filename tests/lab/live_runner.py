#!/usr/bin/env python3
"""Inside the live lab's guest: crash-ext's verbs in one crash session per target.

    python3 tests/lab/live_runner.py JOB.json

Run by the guest (``tests/lab/guest/live.sh``) chrooted into the host's root, which it
sees read-only over 9p.  JOB.json (written by ``tests/lab/live.py``) names the crash, the
vmlinux, the lab module and the sessions: ``{"label": "live", "vmcore": null}`` is the
running kernel (crash with no dump file, as ``crash-ext`` without ``--vmcore``), a
``vmcore`` path a dump read in the same guest for comparison, ``{"label": "incrash",
"mpykdump": PATH}`` the running kernel again, the verbs typed at crash's prompt with the
real pykdump (``install.sh --mpykdump PATH`` into a HOME on the guest's tmpfs, then one
``crash VMLINUX`` fed the verbs on stdin: ``tests/incrash.run_script``).  Each session
runs every argv of ``argvs`` through the verbs as ``crash-ext`` does, and prints, for the
host:

    LIVE-SESSION LABEL start SECONDS
    LIVE-ARGV LABEL I ["whoholds", "0xffff..."]
    LIVE-OUT-BEGIN LABEL I
    ...the verb's standard output...
    LIVE-OUT-END LABEL I rc=RC seconds=SECONDS

(inside crash a verb has no exit code and crash runs the whole script at once: ``rc=-``
and the script's seconds divided among its verbs).

Pids and addresses differ from boot to boot, so an argv names them through the truth
the module publishes (``/proc/crashext_lab`` of the session's kernel: the live one, or
the dump's ``truth.json`` beside it): ``{lock:N}`` the N-th lock's address, ``{owner:N}``
its first owner's pid, ``{waiter:N}`` its last waiter's pid, ``{pid:COMM}`` the pid of the
truth's task COMM.

Nothing is written but the console: crash-ext's caches go to the guest's tmpfs.
"""

import io
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from crash_ext.ports.crashproc import CrashProcess  # noqa: E402
from crash_ext.session.taskview import require_task_view  # noqa: E402
from crash_ext.verbs import registry  # noqa: E402


def resolve(word, truth):
    """Return ``word`` with its ``{kind:arg}`` placeholder replaced from ``truth``."""
    if not (word.startswith("{") and word.endswith("}")):
        return word
    kind, _, arg = word[1:-1].partition(":")
    if kind == "pid":
        (pid,) = [t["pid"] for t in truth["tasks"] if t["comm"] == arg][:1]
        return str(pid)
    lock = truth["locks"][int(arg)]
    return {"lock": lambda: lock["address"], "owner": lambda: str(lock["owners"][0]["pid"]),
            "waiter": lambda: str(lock["waiters"][-1]["pid"])}[kind]()


def truth_of(path):
    """The module's truth for a session: the running kernel's (``path`` None), or the
    dump's ``truth.json`` at ``path``."""
    with open(path or "/proc/crashext_lab") as f:
        return json.load(f)


def session(job, label, vmcore, truth_path):
    """Open crash on ``vmcore`` (None: the running kernel), run the job's verbs, print
    their outputs between markers.  Returns nothing; crash failures print as
    LIVE-FAILED."""
    t0 = time.time()
    # an emulated guest under churn on a shared host: crash's start-up took over 300 s
    port = CrashProcess(job["vmlinux"], vmcore, crash=job["crash"], timeout=1800,
                        startup_timeout=1800)
    try:
        require_task_view(port)
        port.command("mod -s crashext_lab %s" % job["module_ko"])
        print("LIVE-SESSION %s start %.1f" % (label, time.time() - t0), flush=True)
        truth = truth_of(truth_path)
        for i, template in enumerate(job["argvs"]):
            argv = [resolve(w, truth) for w in template]
            print("LIVE-ARGV %s %d %s" % (label, i, json.dumps(argv)), flush=True)
            out = io.StringIO()
            t = time.time()
            try:
                rc = registry.load(argv[0]).main(argv[1:], port, out=out)
            except Exception as e:  # noqa: BLE001 - reported to the host as a failure
                out.write("LIVE-EXCEPTION %s: %s\n" % (type(e).__name__, e))
                rc = 99
            text = out.getvalue()
            print("LIVE-OUT-BEGIN %s %d" % (label, i), flush=True)
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
            print("LIVE-OUT-END %s %d rc=%d seconds=%.2f" % (label, i, rc, time.time() - t),
                  flush=True)
    finally:
        port.close()


def incrash_session(job, label, mpykdump, crash=None):
    """Install crash-ext for crash with ``mpykdump`` into a HOME on the guest's tmpfs,
    run the job's verbs at the prompt of one crash (``crash``, default the job's) on the
    running kernel, print their outputs between markers.  Raises RuntimeError when install.sh or crash fails."""
    from types import SimpleNamespace
    from tests import incrash
    home = incrash.installed_home(tempfile.mkdtemp(prefix="incrash-"), mpykdump)
    target = SimpleNamespace(crash=crash or job["crash"], vmlinux=job["vmlinux"], vmcore=None,
                             module_ko=job["module_ko"])
    truth = truth_of(None)
    argvs = [[resolve(w, truth) for w in template] for template in job["argvs"]]
    t = time.time()
    outs, startup = incrash.run_script(target, [" ".join(a) for a in argvs], home)
    if "crash-ext: registered" not in startup:
        raise RuntimeError("crash did not register the verbs: %s" % startup[-500:])
    each = (time.time() - t) / max(1, len(argvs))
    for i, (argv, text) in enumerate(zip(argvs, outs)):
        print("LIVE-ARGV %s %d %s" % (label, i, json.dumps(argv)), flush=True)
        print("LIVE-OUT-BEGIN %s %d" % (label, i), flush=True)
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        print("LIVE-OUT-END %s %d rc=- seconds=%.2f" % (label, i, each), flush=True)


def main(argv):
    with open(argv[0]) as f:
        job = json.load(f)
    for s in job["sessions"]:
        try:
            if s.get("mpykdump"):
                incrash_session(job, s["label"], s["mpykdump"], s.get("crash"))
            else:
                session(job, s["label"], s["vmcore"], s.get("truth"))
        except Exception as e:  # noqa: BLE001
            print("LIVE-FAILED: session %s: %s: %s" % (s["label"], type(e).__name__, e),
                  flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
