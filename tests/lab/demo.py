#!/usr/bin/env python3
"""``make demo``: the product's main job on the lab's "seed" dump.

Replays the seed article's investigation with crash-ext's verbs, outside crash, on the
lab's seed dump (built or reused from the cache): ``deadlock``, then ``whoholds -p`` of
the stuck ``rm``, then ``argrecover`` of the rm's ``vfs_unlink`` frame.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from crash_ext import cli  # noqa: E402
from tests.lab.labdumps import get_dump  # noqa: E402


def main():
    d = get_dump("seed")
    rm = next(t for t in d.truth["tasks"] if t["comm"] == "rm")["pid"]
    common = ["--vmlinux", d.vmlinux, "--vmcore", d.vmcore, "--crash", d.crash,
              "--mod", "crashext_lab=" + d.module_ko]
    print("# lab dump: %s (kernel %s)\n" % (d.vmcore, d.meta["kernel_abi"]), flush=True)
    worst = 0
    for verb in (["deadlock"], ["whoholds", "-p", str(rm)], ["argrecover", str(rm), "vfs_unlink"]):
        print("crash> %s" % " ".join(verb), flush=True)
        rc = cli.main(verb + common)
        print(flush=True)
        if rc not in (0, 1):
            worst = rc
    return worst


if __name__ == "__main__":
    sys.exit(main())
