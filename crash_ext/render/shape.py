"""The shape every verb's ``--json`` document shares (docs/json.md, docs/json-schema.json).

One place for the rules a runbook relies on:

* every document is an object ``{"schema_version", "verb", "dump", ...}``;
  ``dump`` is the session's identity (:func:`~crash_ext.session.identity.dump_identity`);
* every address is a string ``"0x..."`` in lower-case hex (:func:`hexaddr`);
* every task is one object ``{"pid", "task", "comm", "state", "cpu", "last_ran_ns"}``
  (:func:`task_json`), whichever verb prints it;
* result records are turned into JSON data by :func:`to_json`, driven by their fields:
  a field added to a record later (``core.results``) appears without a change here,
  an integer field whose name says it is an address (:func:`is_address_key`) as a hex
  string.

Text rendering stays in the verbs; the bytes are written by :mod:`.jsontext`.
"""

import re
from ..compat import Dict, Optional

from ..core import record
from ..core.results import TaskRef

__all__ = ["SCHEMA_VERSION", "hexaddr", "is_address_key", "last_ran_ns", "task_json",
           "to_json", "document"]

#: bumped when a field changes meaning or is removed (adding a field does not bump it)
SCHEMA_VERSION = 1

#: integer fields that hold addresses, wherever they appear
ADDRESS_KEYS = frozenset(("task", "address", "lock_address", "waiter", "root_lock",
                          "holds", "wants", "lock", "container_address", "value",
                          "completion", "object"))


def is_address_key(key) -> bool:
    """Return True when an integer under ``key`` is an address (or a 64-bit word) and
    is printed as a hex string: the :data:`ADDRESS_KEYS`, and any ``*_address``,
    ``*_addr`` or ``*_task`` name."""
    if not isinstance(key, str):
        return False
    return key in ADDRESS_KEYS or key.endswith(("_address", "_addr", "_task"))


def hexaddr(value) -> Optional[str]:
    """Return ``value`` (an int) as ``"0x..."`` (lower-case hex), None for None."""
    if value is None:
        return None
    return "0x%x" % value


_LAST_RAN = re.compile(r"\[?\s*(\d+) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?\s*\]?\Z")


def last_ran_ns(text) -> Optional[int]:
    """Return the time since a task last ran, in nanoseconds, from crash's ``ps -m``
    form ``[D HH:MM:SS.mmm]`` (millisecond precision: the digits ``ps -m`` prints);
    None when ``text`` is None or not in that form."""
    if not isinstance(text, str):
        return None
    m = _LAST_RAN.match(text.strip())
    if not m:
        return None
    d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4))
    frac = m.group(5) or ""
    ns = int((frac + "000000000")[:9]) if frac else 0
    return (((d * 24 + h) * 60 + mi) * 60 + s) * 1000000000 + ns


def task_json(t: Optional[TaskRef]) -> Optional[Dict[str, object]]:
    """Return the one task object every verb prints: ``pid``, ``task`` (address),
    ``comm``, ``state`` (ps's ``UN``, ``RU``...), ``cpu``, ``last_ran_ns`` (None when
    not read); None for None."""
    if t is None:
        return None
    return {"pid": t.pid, "task": hexaddr(t.task), "comm": t.comm, "state": t.state,
            "cpu": t.cpu, "last_ran_ns": last_ran_ns(t.last_ran)}


def to_json(obj, key=None):
    """Return ``obj`` -- result records, dicts, lists, scalars -- as JSON data: a
    :class:`TaskRef` as :func:`task_json`, another record as a dict of its fields, an
    int under an address key (:func:`is_address_key`) as a hex string.  Raises
    TypeError for an object JSON cannot hold."""
    if isinstance(obj, TaskRef):
        return task_json(obj)
    if record.is_record(obj):
        return {f.name: to_json(getattr(obj, f.name), f.name) for f in record.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_json(v, k) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v, key) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, float)):
        return obj
    if isinstance(obj, int):
        return hexaddr(obj) if is_address_key(key) else obj
    raise TypeError("no JSON form for %s" % type(obj).__name__)


def document(verb: str, dump: Dict[str, Optional[str]], body: Dict[str, object]
             ) -> Dict[str, object]:
    """Return the document of ``verb``: ``schema_version``, ``verb``, ``dump`` (the
    session's identity, :func:`~crash_ext.session.identity.dump_identity`), then
    ``body``'s keys in order."""
    doc = {"schema_version": SCHEMA_VERSION, "verb": verb, "dump": dict(dump)}
    doc.update(body)
    return doc
