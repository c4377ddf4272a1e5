"""Record classes: the part of :mod:`dataclasses` crash-ext uses, without it.

pykdump's embedded standard library is the list in its ``Extension/minpylib-3.N.lst``;
the 3.8 and 3.9 lists have no ``dataclasses``.  This module gives the same behaviour for
what the code needs::

    @dataclass
    class Frame:
        level: int
        words: list = field(default_factory=list)

- ``__init__`` with the annotated fields in order (those of record base classes first),
  defaults and ``field(default=..)`` / ``field(default_factory=..)``;
- ``__repr__`` ``Frame(level=1, words=[])`` and ``__eq__`` on the fields (same class only);
  ``__hash__`` is None unless the class defines one (as a non-frozen dataclass);
- methods the class defines itself are kept;
- :func:`fields`, :func:`asdict`, :func:`replace`, :func:`is_record`.
Not supported: ``frozen``, ``order``, ``InitVar``, ``__post_init__``.
"""

__all__ = ["dataclass", "field", "fields", "asdict", "replace", "is_record"]

_MISSING = object()
_FIELDS = "__record_fields__"


class Field:
    """One field of a record: ``name``, ``default``, ``default_factory`` (or _MISSING)."""

    __slots__ = ("name", "default", "default_factory")

    def __init__(self, default=_MISSING, default_factory=_MISSING):
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = None
        self.default = default
        self.default_factory = default_factory

    def __repr__(self):
        return "Field(name=%r)" % (self.name,)


def field(default=_MISSING, default_factory=_MISSING) -> Field:
    """Return a field specification for a class attribute of a :func:`dataclass`."""
    return Field(default, default_factory)


def _is_classvar(annotation) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _collect(cls):
    """Return the fields of ``cls``: its record bases' first, then its own annotations."""
    by_name = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get(_FIELDS, ()):
            by_name[f.name] = f
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        if isinstance(value, Field):
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        by_name.pop(name, None)
        by_name[name] = f
    return tuple(by_name.values())


def _make_init(cls, flds):
    seen_default = False
    params, body = [], []
    env = {"_MISSING": _MISSING}
    for f in flds:
        if f.default is not _MISSING:
            env["_d_" + f.name] = f.default
            params.append("%s=_d_%s" % (f.name, f.name))
            body.append("self.%s = %s" % (f.name, f.name))
            seen_default = True
        elif f.default_factory is not _MISSING:
            env["_f_" + f.name] = f.default_factory
            params.append("%s=_MISSING" % f.name)
            body.append("self.%s = _f_%s() if %s is _MISSING else %s"
                        % (f.name, f.name, f.name, f.name))
            seen_default = True
        else:
            if seen_default:
                raise TypeError("non-default argument %r follows default argument" % f.name)
            params.append(f.name)
            body.append("self.%s = %s" % (f.name, f.name))
    src = "def __init__(self%s):\n    %s\n" % (
        "".join(", " + p for p in params), "\n    ".join(body or ["pass"]))
    exec(src, env)  # noqa: S102 - source built above from the field names only
    init = env["__init__"]
    init.__qualname__ = "%s.__init__" % cls.__qualname__
    return init


def _repr(self):
    return "%s(%s)" % (self.__class__.__qualname__, ", ".join(
        "%s=%r" % (f.name, getattr(self, f.name)) for f in getattr(self, _FIELDS)))


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = [f.name for f in getattr(self, _FIELDS)]
    return [getattr(self, n) for n in names] == [getattr(other, n) for n in names]


def dataclass(cls):
    """Make ``cls`` a record class (see the module's text); returns ``cls``.  Raises
    TypeError for a field without default after one with a default."""
    flds = _collect(cls)
    setattr(cls, _FIELDS, flds)
    if "__init__" not in cls.__dict__:
        cls.__init__ = _make_init(cls, flds)
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = _eq
        if "__hash__" not in cls.__dict__:
            cls.__hash__ = None
    return cls


def is_record(obj) -> bool:
    """Return whether ``obj`` is a record class or an instance of one."""
    return hasattr(obj if isinstance(obj, type) else type(obj), _FIELDS)


def fields(obj):
    """Return the :class:`Field` tuple of a record class or instance; raises TypeError
    for anything else."""
    if not is_record(obj):
        raise TypeError("not a record class or instance: %r" % (obj,))
    return getattr(obj, _FIELDS)


def asdict(obj):
    """Return ``obj`` (a record instance) as a dict, records inside lists, tuples and
    dicts converted too (as ``dataclasses.asdict``, without copying other values).
    Raises TypeError when ``obj`` is not a record instance."""
    if isinstance(obj, type) or not is_record(obj):
        raise TypeError("asdict() should be called on record instances")
    return _asdict(obj)


def _asdict(obj):
    if not isinstance(obj, type) and is_record(obj):
        return {f.name: _asdict(getattr(obj, f.name)) for f in getattr(obj, _FIELDS)}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[_asdict(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return type(obj)(_asdict(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((_asdict(k), _asdict(v)) for k, v in obj.items())
    return obj


def replace(obj, **changes):
    """Return a new record like ``obj`` with the fields in ``changes`` replaced; raises
    TypeError for an unknown field name or a non-record."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    for k in changes:
        if k not in values:
            raise TypeError("%s has no field %r" % (type(obj).__name__, k))
    values.update(changes)
    return obj.__class__(**values)
