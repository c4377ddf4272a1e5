"""``make fuzz``: hostile words and damaged dumps, counted (issue 17).

    python -m tests.fuzz_hostile [--parser-runs N] [--no-dump]

1. parsers: N random argument lists (seeded) for whoholds, argrecover, deadlock and
   crash-ext's own options, against a port that answers like an empty crash session;
2. words on the real convoy lab dump: the issue's hostile words (Unicode digits, ``1_0``,
   5,000-digit numbers, ``nan``/``inf``, overlong hex...) in every verb's every word
   position, one crash session, and the plain commands whose exit code the truth
   gives (a convoy: ``deadlock`` 1, the others 0);
3. damaged copies of that dump (tests/lab/damage.py): each verb on each, one crash
   session per copy; then the dump cut at 60% and 95%, the compressed dump and a wrong
   vmlinux through crash-ext itself.

Prints the counts: inputs tried, tracebacks, hangs, false cycles, phantom locks, wrong
exit codes (outside {0,1,2,3}; 2 expected for a refused word, 3 when crash cannot open
the dump; a usage error longer than one line counts too).  Exit status 1 when any
count other than "inputs" is not zero.
"""

import argparse
import contextlib
import glob
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time

from crash_ext.verbs import cli
from crash_ext.core.errors import CrashDied, CrashTimeout

HOSTILE = ["\u00b2", "\u0663", "\u06f3", "\u0969", "\uff13", "\U0001d7d1", "1_0", "0_1",
           "+1", "-1", "9" * 5000, "0x" + "f" * 300, "f" * 17, "nan", "inf", "-inf", "1e3",
           "", " ", "\x00", "\udcff", "a\x1b[2J", "$(id)", "`id`", "a;b", "a|b", "a>b",
           "../../etc/passwd", "%s%n", "#", "##1", "#-1", "#99999", "\u202e1",
           "\u0661\u0660", "1\u00b2", "0x", "0x-1", "1 2", "\t", "-", "1.5"]

COUNTS = ["inputs", "tracebacks", "hangs", "false cycles", "phantom locks", "wrong exits"]


class Tally:
    """The counts, with the first few examples of each failure."""

    def __init__(self):
        self.n = {k: 0 for k in COUNTS}
        self.examples = {k: [] for k in COUNTS}

    def add(self, key, example=None, k=1):
        self.n[key] += k
        if key != "inputs" and example is not None and len(self.examples[key]) < 5:
            self.examples[key].append(example)

    def merge(self, other):
        for k in COUNTS:
            self.n[k] += other.n[k]
            self.examples[k] += other.examples[k][:5 - len(self.examples[k])]


def _short(x, n=160):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."


def _lines(text):
    return [l for l in text.splitlines() if l.strip()]


# ------------------------------------------------------------------ 1. parsers

def parser_fuzz(runs, seed=17):
    """Return the Tally of ``runs`` random argument lists per verb and for crash-ext."""
    from tests.unit.test_words import OPTS, EmptyCrash, FakeProcess
    import crash_ext.render.outputs as O
    import crash_ext.render.dot as R
    from crash_ext.verbs import argrecover as A, deadlock as D, whoholds as W
    t = Tally()
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x20, 0x7f)] + ["\u00b2", "\u0663", "_", "\x00",
                                                      "\udcff", "\n", "\u202e", "\uff13"]

    def word():
        r = rng.random()
        if r < 0.3:
            return rng.choice(OPTS)
        if r < 0.6:
            return rng.choice(HOSTILE)
        if r < 0.8:
            return str(rng.randint(-10 ** 30, 10 ** 30))
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
    saved = (O.write_output, R.dot_available, cli.CrashProcess)
    O.write_output = lambda path, data: None       # nothing generated is ever written
    R.dot_available = lambda: None
    cli.CrashProcess = FakeProcess
    cwd = os.getcwd()
    tmp = tempfile.mkdtemp(prefix="fuzz-")
    os.chdir(tmp)
    try:
        for _ in range(runs):
            for name, main in (("whoholds", W.main), ("argrecover", A.main),
                               ("deadlock", D.main), ("crash-ext", None)):
                argv = [word() for _ in range(rng.randint(0, 6))]
                if name == "crash-ext":
                    argv = [rng.choice(["--vmlinux", "--vmcore", "--crash", "--timeout",
                                        "--mod", "deadlock", "whoholds"]) if
                            rng.random() < 0.4 else w for w in argv]
                t.add("inputs")
                out, err = io.StringIO(), io.StringIO()
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                        if main is None:
                            rc = cli.main(argv)
                        else:
                            rc = main(argv, EmptyCrash(), out=out, err=err)
                except BaseException as e:   # noqa: BLE001 - counted
                    t.add("tracebacks", (name, _short(argv), "%s: %s" % (
                        type(e).__name__, _short(str(e)))))
                    continue
                text = out.getvalue() + err.getvalue()
                if "internal error" in text or "Traceback" in text:
                    t.add("tracebacks", (name, _short(argv), _short(text)))
                if rc not in (0, 1, 2, 3):
                    t.add("wrong exits", (name, _short(argv), rc))
                elif rc == 2 and "-h" not in argv and "--help" not in argv and \
                        len(_lines(text)) != 1:
                    t.add("wrong exits", (name, _short(argv), "not one line: " +
                                          _short(text)))
    finally:
        O.write_output, R.dot_available, cli.CrashProcess = saved
        os.chdir(cwd)
    return t


# ------------------------------------------------------------------ 2. words on a dump

def dump_words(dm, t):
    """Hostile words in every word position of every verb on the intact copy, and the
    plain commands the truth gives an exit code for; one crash session."""
    from tests.lab.damage import check, run_verb
    pid = str(dm.waiter_pids[0])
    lock = "%x" % dm.lock_addr
    plan = []
    for w in HOSTILE:
        plan += [("whoholds", ["-p", w]), ("whoholds", [w]), ("whoholds", ["-t", w, lock]),
                 ("whoholds", ["--max-waiters", w, lock]), ("whoholds", ["mutex." + w, lock]),
                 ("argrecover", [w]), ("argrecover", [pid, w]),
                 ("deadlock", ["-p", w]), ("deadlock", ["--limit", w])]
    expect_ok = [("deadlock", ["--json"], 1), ("whoholds", ["-p", pid, "--json"], 0),
                 ("whoholds", [lock, "--json"], 0), ("argrecover", [pid], 0),
                 ("deadlock", ["-p", pid], 1)]
    with contextlib.closing(dm.session(dm.copy)) as cp:
        for verb, argv in plan:
            t.add("inputs")
            o = run_verb(cp, verb, argv)
            _count(dm, t, o, expect=2)
        for verb, argv, rc in expect_ok:
            t.add("inputs")
            o = run_verb(cp, verb, argv)
            _count(dm, t, o, expect=rc)
    # crash-ext's own options on the real dump (refused before crash starts)
    for w in ["nan", "inf", "-inf", "-1", "0", "9" * 5000, "1e400", "\u00b2"]:
        t.add("inputs")
        r = _cli(dm, ["--timeout", w, "deadlock"])
        _count_cli(t, r, expect=2, what="--timeout %s" % _short(w, 40))


def _count(dm, t, o, expect=None, cycles=0):
    from tests.lab.damage import check
    for p in check(dm, o, expect_cycles=cycles):
        key = ("tracebacks" if p.startswith("traceback") else
               "hangs" if p.startswith("hang") else
               "false cycles" if p.startswith("false cycle") else
               "phantom locks" if p.startswith(("phantom", "waiter")) else "wrong exits")
        t.add(key, (o.verb, _short(o.argv, 80), p))
    if expect is not None and o.rc != expect and o.escaped is None:
        t.add("wrong exits", (o.verb, _short(o.argv, 80), "exit %s, expected %s: %s" % (
            o.rc, expect, _short(o.text[-300:]))))
    elif o.rc == 2 and len(_lines(o.text)) != 1:
        t.add("wrong exits", (o.verb, _short(o.argv, 80), "not one line"))


def _cli(dm, args, vmlinux=None, vmcore=None):
    d = dm.dump
    cmd = [sys.executable, "-m", "crash_ext.verbs.cli"] + list(args) + [
        "--vmlinux", vmlinux or d.vmlinux, "--vmcore", vmcore or dm.copy,
        "--crash", d.crash, "--mod", "crashext_lab=" + dm.module_ko]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        r = None
    return r, time.monotonic() - t0


def _count_cli(t, res, expect, what, need=None):
    r, secs = res
    if r is None:
        t.add("hangs", (what, "no answer in 900 s"))
        return None
    if "Traceback" in r.stderr + r.stdout or "internal error" in r.stderr:
        t.add("tracebacks", (what, _short(r.stderr[-300:])))
    ok = r.returncode in expect if isinstance(expect, tuple) else r.returncode == expect
    if not ok:
        t.add("wrong exits", (what, "exit %s, expected %s: %s" % (
            r.returncode, expect, _short(r.stderr[-300:]))))
    elif r.returncode in (2, 3) and len(_lines(r.stderr)) != 1:
        t.add("wrong exits", (what, "not one line: %s" % _short(r.stderr)))
    elif need and need not in r.stderr:
        t.add("wrong exits", (what, "%r not said: %s" % (need, _short(r.stderr))))
    return r


# ------------------------------------------------------------------ 3. damaged dumps

def damaged(dm, t, log):
    from tests.lab.damage import run_verb, sha256, verb_plan
    for v in dm.variants():
        with dm.applied(v):
            before = sha256(dm.copy)
            with contextlib.closing(dm.session(dm.copy)) as cp:
                for verb, argv in verb_plan(dm):
                    t.add("inputs")
                    o = run_verb(cp, verb, argv)
                    _count(dm, t, o)
                    log("  %-8s %s" % (v[0], o))
            if sha256(dm.copy) != before:
                t.add("wrong exits", (v[0], "the damaged copy changed"))
    for frac in (0.6, 0.95):
        path = dm.truncated(frac)
        t.add("inputs")
        r = _count_cli(t, _cli(dm, ["deadlock", "--json"], vmcore=path), (0, 1, 3),
                       "cut at %d%%" % (frac * 100), need="truncated")
        if r is not None:
            log("  cut %d%%: exit %s: %s" % (frac * 100, r.returncode,
                                            _lines(r.stderr)[-1:] if r.stderr else ""))
            if r.returncode in (0, 1):
                try:
                    doc = json.loads(r.stdout)
                except ValueError:
                    doc = {}
                if doc.get("cycles"):
                    t.add("false cycles", ("cut", frac))
                for a in [int(x["address"], 16) for x in doc.get("locks", [])]:
                    if a not in dm.truth_locks:
                        t.add("phantom locks", ("cut", frac, "%x" % a))
        os.unlink(path)
    zst = os.path.join(dm.dump.directory, dm.dump.meta["vmcore_zst"])
    t.add("inputs")
    # a zstd dump is decompressed once into the cache and answered (the convoy: exit 1)
    r = _count_cli(t, _cli(dm, ["deadlock"], vmcore=zst), 1, "zst as vmcore")
    log("  zst: %s" % (_lines(r.stderr)[-1:] if r is not None else "?"))
    others = [v for v in glob.glob(os.path.join(os.path.dirname(os.path.dirname(
        dm.dump.vmlinux)), "*", "vmlinux")) if os.path.realpath(v) !=
        os.path.realpath(dm.dump.vmlinux)]
    if others:
        t.add("inputs")
        r = _count_cli(t, _cli(dm, ["deadlock"], vmlinux=others[0],
                               vmcore=dm.dump.vmcore), 3, "wrong vmlinux",
                       need="does not match")
        log("  wrong vmlinux: %s" % (_lines(r.stderr)[-1:] if r is not None else "?"))
    for target in (dm.copy, dm.dump.vmlinux, dm.module_ko):
        t.add("inputs")
        r = _count_cli(t, _cli(dm, ["deadlock", "--force", "--dot", target]), 2,
                       "--dot %s" % os.path.basename(target), need="refusing")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parser-runs", type=int, default=500)
    ap.add_argument("--no-dump", action="store_true", help="only the parser part")
    ap.add_argument("--scenario", default="convoy")
    opts = ap.parse_args(argv)
    t0 = time.monotonic()
    # a type store of this run's own, as the tests have (tests/conftest.py): the shared
    # one may hold facts another version of crash-ext wrote
    os.environ["CRASH_EXT_TYPES"] = tempfile.mkdtemp(prefix="crash-ext-types-")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)
    parts = []
    t = parser_fuzz(opts.parser_runs)
    parts.append(("parsers (fake crash)", t))
    where = ""
    if not opts.no_dump:
        from tests.lab.damage import Damager, sha256
        from tests.lab.labdumps import crash_version, get_dump
        d = get_dump(opts.scenario)
        where = "%s dump, kernel %s, crash %s" % (
            opts.scenario, d.meta.get("kernel_abi"),
            ".".join(map(str, crash_version(d.crash))))
        with tempfile.TemporaryDirectory(prefix="fuzz-dump-") as wd:
            with Damager(d, wd) as dm:
                w = Tally()
                dump_words(dm, w)
                parts.append(("words on the dump", w))
                dmg = Tally()
                damaged(dm, dmg, log)
                parts.append(("damaged copies", dmg))
            for path in dm.changed():
                parts[-1][1].add("wrong exits", ("original changed", path))
    total = Tally()
    print("crash-ext fuzz%s (%.0f s)" % (": " + where if where else "",
                                         time.monotonic() - t0))
    print("  %-22s %s" % ("", "  ".join("%13s" % k for k in COUNTS)))
    for name, part in parts:
        total.merge(part)
        print("  %-22s %s" % (name, "  ".join("%13d" % part.n[k] for k in COUNTS)))
    print("  %-22s %s" % ("total", "  ".join("%13d" % total.n[k] for k in COUNTS)))
    for k in COUNTS[1:]:
        for ex in total.examples[k]:
            print("  %s: %s" % (k, ex))
    return 1 if any(total.n[k] for k in COUNTS[1:]) else 0


if __name__ == "__main__":
    sys.exit(main())
