"""The ``typing`` names crash-ext uses, also where there is no ``typing`` module.

pykdump embeds only the standard-library files of its ``Extension/minpylib-3.N.lst``, and
its 3.8 list has no ``typing.py``.  Annotations only need names that can be subscripted, so
without ``typing`` they are placeholders; :data:`NamedTuple` then builds the class with
:func:`collections.namedtuple` (fields, defaults and the methods of the class body), as
``typing.NamedTuple`` does.  With ``typing`` present the real names are used.
"""

__all__ = ["Callable", "Dict", "FrozenSet", "Iterable", "Iterator", "List", "NamedTuple",
           "Optional", "Sequence", "Set", "Tuple", "Union"]

try:
    from typing import (Callable, Dict, FrozenSet, Iterable, Iterator, List, NamedTuple,
                        Optional, Sequence, Set, Tuple, Union)
except ImportError:
    import collections

    class _Placeholder:
        """A typing name in an annotation: subscripting gives the placeholder back."""

        def __init__(self, name):
            self._name = name

        def __getitem__(self, item):
            return self

        def __repr__(self):
            return self._name

    Callable = _Placeholder("Callable")
    Dict = _Placeholder("Dict")
    FrozenSet = _Placeholder("FrozenSet")
    Iterable = _Placeholder("Iterable")
    Iterator = _Placeholder("Iterator")
    List = _Placeholder("List")
    Optional = _Placeholder("Optional")
    Sequence = _Placeholder("Sequence")
    Set = _Placeholder("Set")
    Tuple = _Placeholder("Tuple")
    Union = _Placeholder("Union")

    _SKIP = {"__annotations__", "__module__", "__qualname__", "__dict__", "__weakref__",
             "__doc__"}

    class _NamedTupleMeta(type):
        def __new__(mcls, name, bases, ns):
            if not bases:       # NamedTuple itself
                return super().__new__(mcls, name, bases, ns)
            names = list(ns.get("__annotations__", {}))
            defaults = [ns[n] for n in names if n in ns]
            cls = collections.namedtuple(name, names, defaults=defaults,
                                         module=ns.get("__module__"))
            for k, v in ns.items():
                if k not in _SKIP and k not in names:
                    setattr(cls, k, v)
            if ns.get("__doc__"):
                cls.__doc__ = ns["__doc__"]
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base of class-syntax named tuples (``class P(NamedTuple): x: int = 0``)."""
