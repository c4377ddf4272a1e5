"""Walking a lock's waiters: its wait list (or a PREEMPT_RT rbtree), bounded and
loop-checked, each waiter record decoded (:func:`walk_waiters`); a sleeper's own
waiter records among its stack words (:func:`own_records`)."""

from ..compat import Dict, List, Optional, Tuple

from ..core.errors import CrashExtError
from ..core.port import Port
from .locks import (MAX_WAITERS, LockLayout, WaitEntry, WaiterLayout, WaitWalk,
                    is_kernel_pointer, rt_base_offset)
from .lockstate import field_value

__all__ = ["walk_waiters", "decode_waiter", "mode_of", "own_records"]


def mode_of(w: WaiterLayout, rec: bytes) -> Optional[str]:
    """Return the mode ('reader'/'writer') waiter record ``rec`` asks for, None when the
    layout records none."""
    if w.mode_off is None:
        return None
    v = field_value(rec, w.mode_off, w.mode_size)
    if v is None:
        return None
    if w.mode_is_flags:
        if v & (w.read_value or 0):
            return "reader"
        if v & (w.write_value or 0):
            return "writer"
        return None
    if v == w.read_value:
        return "reader"
    if v == w.write_value:
        return "writer"
    return None


def decode_waiter(w: WaiterLayout, rec_addr: int, rec: bytes
                  ) -> Tuple[int, Optional[int], Optional[int], int, Optional[str]]:
    """Return (record address, next, prev, task, mode) of the waiter record of layout
    ``w`` at ``rec_addr`` whose bytes are ``rec`` (next/prev: its list node's links,
    None when ``rec`` is too short; task 0 when unreadable)."""
    return (rec_addr, field_value(rec, w.node_off, 8), field_value(rec, w.node_off + 8, 8),
            field_value(rec, w.task_off, 8) or 0, mode_of(w, rec))


def walk_waiters(port: Port, layout: LockLayout, addr: int, raw: Optional[bytes] = None,
                 cap: int = MAX_WAITERS, known: Optional[Dict[int, tuple]] = None
                 ) -> WaitWalk:
    """Return the waiters of the lock at ``addr`` in queue order.

    ``known``: {list node: :func:`decode_waiter` of its record} for records already
    read (they are not read again).  The walk is bounded by ``cap`` entries and stops
    at a loop that does not return to the head, a pointer that is not a kernel pointer
    or cannot be read, or a broken ``prev`` link; it then returns what it found with
    ``complete`` False and the reason in ``problems``.  Never raises for bad list
    contents.
    """
    ww = WaitWalk()
    w = layout.waiter
    if layout.wait_off is None or w is None:
        return ww
    if raw is None:
        try:
            raw = port.read(addr, layout.size)
        except CrashExtError as e:
            ww.complete = False
            ww.problems.append("cannot read the lock: %s" % e)
            return ww
    if layout.wait_kind == "rbtree":
        ww = _walk_rbtree(port, layout, raw, cap, ww)
        ww.sound = len(ww.entries) if ww.complete else 0
        if not ww.complete and ww.problems and "(cap)" not in ww.problems[-1]:
            ww.damaged = ww.problems[-1]
        return ww
    head_addr = addr + layout.wait_off
    first = field_value(raw, layout.wait_off, 8)
    if layout.wait_kind == "headless":
        if not first:
            return ww
        if layout.first_is_record:
            first += w.node_off        # the record's own list node
        head = None
        nxt = first
    else:
        head = head_addr
        nxt = first
        ww.nodes.append(head)
        if nxt == head:
            prev = field_value(raw, layout.wait_off + 8, 8)
            if prev != head:
                ww.problems.append("wait_list.next points at itself but prev is %#x"
                                   % (prev or 0))
                ww.damaged = ww.problems[-1]
            return ww
    seen = set(ww.nodes)
    prev_node = head
    stop_at = head if head is not None else first
    while True:
        if len(ww.entries) >= cap:
            ww.complete = False
            ww.problems.append("stopped after %d waiters (cap)" % cap)
            break
        if nxt is None or not is_kernel_pointer(nxt) or nxt % 8:
            ww.complete = False
            ww.problems.append("bad wait-list pointer %#x after %s" % (
                nxt or 0, "%#x" % prev_node if prev_node else "the head"))
            break
        if nxt in seen:
            ww.complete = False
            ww.problems.append("wait list loops back to %#x without returning to the "
                               "head" % nxt)
            break
        dec = known.get(nxt) if known else None
        if dec is None:
            rec_addr = nxt - w.node_off
            try:
                rec = port.read(rec_addr, max(w.size, w.task_off + 8))
            except CrashExtError as e:
                ww.complete = False
                ww.problems.append("cannot read waiter at %#x: %s" % (
                    rec_addr, " ".join(str(e).split())[-160:]))
                break
            dec = decode_waiter(w, rec_addr, rec)
        rec_addr, nnext, nprev, task, mode = dec
        seen.add(nxt)
        ww.nodes.append(nxt)
        if prev_node is not None and nprev != prev_node:
            ww.problems.append("waiter %#x: prev %#x does not point back at %#x"
                               % (rec_addr, nprev or 0, prev_node))
            if ww.damaged is None:
                ww.damaged = ww.problems[-1]
        ww.entries.append(WaitEntry(rec_addr, task, mode))
        if ww.damaged is None:
            ww.sound = len(ww.entries)
        prev_node = nxt
        nxt = nnext
        if nxt == stop_at:
            break
    if ww.damaged is None and not ww.complete and ww.problems and \
            "(cap)" not in ww.problems[-1]:
        ww.damaged = ww.problems[-1]
    return ww


def _walk_rbtree(port, layout, raw, cap, ww):
    w = layout.waiter
    root = field_value(raw, layout.wait_off, 8) or 0
    stack = []  # type: List[int]
    node = root
    seen = set()
    steps = 0
    while stack or node:
        steps += 1
        if steps > 4 * cap + 16:
            ww.complete = False
            ww.problems.append("rbtree walk stopped after %d steps (cap)" % steps)
            break
        if node:
            if not is_kernel_pointer(node) or node in seen:
                ww.complete = False
                ww.problems.append("bad or repeated rbtree node %#x" % node)
                break
            seen.add(node)
            stack.append(node)
            try:
                node = port.read_u64(node + layout.rb_left_off)
            except CrashExtError as e:
                ww.complete = False
                ww.problems.append("cannot read rbtree node %#x: %s" % (node, e))
                break
            continue
        node = stack.pop()
        rec_addr = node - w.node_off
        try:
            rec = port.read(rec_addr, w.size)
            right = port.read_u64(node + layout.rb_right_off)
        except CrashExtError as e:
            ww.complete = False
            ww.problems.append("cannot read waiter at %#x: %s" % (rec_addr, e))
            break
        ww.nodes.append(node)
        ww.entries.append(WaitEntry(waiter=rec_addr, task=field_value(rec, w.task_off, 8) or 0,
                                    mode=None))
        if len(ww.entries) >= cap:
            ww.complete = False
            ww.problems.append("stopped after %d waiters (cap)" % cap)
            break
        node = right
    return ww


def own_records(words, task: int, w):
    """Yield (record, list node, next, prev) for each place in ``words`` ({address:
    value}, stack words) that reads as a waiter record of layout ``w`` naming ``task``
    with kernel-pointer list links, lowest address first."""
    for tslot in sorted(a for a, v in words.items() if v == task):
        rec = tslot - w.task_off
        node = rec + w.node_off
        nxt = words.get(node)
        prv = words.get(node + 8)
        if nxt and prv and is_kernel_pointer(nxt) and is_kernel_pointer(prv):
            yield rec, node, nxt, prv
