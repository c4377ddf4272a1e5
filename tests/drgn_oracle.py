"""drgn as an independent oracle for argrecover (tests and ``make compare`` only).

drgn reads the same ELF dump with the DWARF of vmlinux and of the lab module and gives
each frame's parameters from the compiler's location lists (often ``absent`` on syscall
paths).  :func:`compare` lines its frames up with crash's by function name and compares,
parameter by parameter, with what argrecover recovered.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import drgn
from drgn.helpers.linux.pid import find_task

from crash_ext.code.sources import recover_with_port
from crash_ext.session.snapshot import Snapshot


@dataclass
class Tally:
    """Per-dump comparison counts; ``conflicts`` lists (pid, function, param, ours, drgn)."""
    frames: int = 0
    params: int = 0
    ours: int = 0
    drgn: int = 0
    both: int = 0
    agree: int = 0
    conflicts: List[Tuple] = field(default_factory=list)
    skipped_clones: int = 0


def open_program(dump) -> drgn.Program:
    """Return a drgn Program on the dump with vmlinux's and the lab module's DWARF."""
    prog = drgn.Program()
    prog.set_core_dump(dump.vmcore)
    prog.load_debug_info([dump.vmlinux, dump.module_ko])
    return prog


def _drgn_frames(prog, pid) -> List[Tuple[str, Dict[int, Optional[Tuple[int, int]]]]]:
    """Return [(function, {param index: (value, size) or None if absent})] of the task's
    non-inline frames, innermost first."""
    out = []
    for fr in prog.stack_trace(find_task(prog, pid)):
        if fr.is_inline or not fr.name:
            continue
        params = {}
        try:
            names = [p.name for p in prog.function(fr.name).type_.parameters]
        except Exception:      # noqa: BLE001 - no DWARF function object for this name
            names = []
        for i, name in enumerate(names):
            try:
                o = fr[name]
                if o.absent_:
                    params[i] = None
                elif o.type_.kind in (drgn.TypeKind.POINTER, drgn.TypeKind.INT,
                                      drgn.TypeKind.BOOL, drgn.TypeKind.ENUM):
                    params[i] = (int(o.value_()) & ((1 << 64) - 1), drgn.sizeof(o.type_))
            except Exception:  # noqa: BLE001 - drgn cannot evaluate this location
                params[i] = None
        out.append((fr.name, params))
    return out


def compare(dump, port, prog=None, states=("UN",)) -> Tally:
    """Compare argrecover with drgn over every frame of every task in ``states``."""
    prog = prog or open_program(dump)
    snap = Snapshot(port)
    t = Tally()
    for state in states:
        for bt in snap.backtraces(state).values():
            ours = recover_with_port(port, bt)
            theirs = _drgn_frames(prog, bt.pid)
            j = 0
            for f in ours.frames:
                k = next((k for k in range(j, len(theirs)) if theirs[k][0] == f.function), None)
                if k is None:
                    continue
                j = k + 1
                if f.clone:
                    t.skipped_clones += 1
                    continue
                t.frames += 1
                params = theirs[k][1]
                for i, a in enumerate(f.args):
                    t.params += 1
                    d = params.get(i)
                    mine = a.value if a.status == "recovered" else None
                    t.ours += mine is not None
                    t.drgn += d is not None
                    if mine is not None and d is not None:
                        t.both += 1
                        mask = (1 << (8 * d[1])) - 1
                        if mine & mask == d[0] & mask:
                            t.agree += 1
                        else:
                            t.conflicts.append((bt.pid, f.function, a.name, mine, d[0]))
    return t
