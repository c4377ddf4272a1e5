#!/usr/bin/env python3
"""``make demo``: the product's main job on the lab's "seed" dump.

Replays the seed article's investigation with crash-ext's verbs, outside crash, in one
crash session on the lab's seed dump (built or reused from the cache): ``deadlock``, then
``whoholds -p`` of the stuck ``rm``, then ``argrecover`` of the rm's ``vfs_unlink`` frame.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from crash_ext.adapters.crashproc import CrashProcess  # noqa: E402
from crash_ext.verbs import registry  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402


def main():
    d = get_dump("seed")
    rm = next(t for t in d.truth["tasks"] if t["comm"] == "rm")["pid"]
    print("# lab dump: %s (kernel %s)" % (d.vmcore, d.meta["kernel_abi"]))
    print("# crash -s %s %s; mod -s crashext_lab %s\n" % (d.vmlinux, d.vmcore, d.module_ko),
          flush=True)
    worst = 0
    with CrashProcess(d.vmlinux, d.vmcore, crash=d.crash, timeout=600) as crash:
        crash.command("mod -s crashext_lab %s" % d.module_ko)
        for argv in (["deadlock"], ["whoholds", "-p", str(rm)],
                     ["argrecover", str(rm), "vfs_unlink"]):
            print("crash> %s" % " ".join(argv), flush=True)
            rc = registry.load(argv[0]).main(argv[1:], crash)
            print(flush=True)
            worst = max(worst, rc if rc not in (0, 1) else 0)
    return worst


if __name__ == "__main__":
    sys.exit(main())
