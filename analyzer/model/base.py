"""Typed records and their one serialisation: JSON (both ways) and polars/Parquet schemas.

Every table row of an :class:`~analyzer.model.analysis.Analysis` is a slotted dataclass whose fields
are typed with the few forms this module understands — ``int``, ``float``, ``str``, ``bool``,
``X | None``, ``list[X]``, another record, a counter map ``dict[str, int]`` and the finding
detail map ``dict[str, DetailValue]`` — so that a table has one fixed schema in every capture
and JSON round-trips exactly. No field is ``Any`` (a test walks every record).
"""

from __future__ import annotations

import dataclasses
import json
import operator
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import TypeAlias, TypeVar, Union, dataclass_transform, get_args, get_origin

import polars as pl

#: A value of a finding's ``details`` map: numbers, text, flags and flat lists of them.
DetailValue: TypeAlias = str | int | float | bool | list[int] | list[str] | list[float] | None

#: JSON as Python's json module reads and writes it.
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None

T = TypeVar("T")

_SCALARS: dict[type, pl.DataType] = {
    int: pl.Int64(),
    float: pl.Float64(),
    str: pl.Utf8(),
    bool: pl.Boolean(),
}


class ModelError(ValueError):
    """A document that does not fit the model (wrong type, unknown record)."""


@dataclass_transform(field_specifiers=(dataclasses.field,))
def record(cls: type[T]) -> type[T]:
    """Declare a model record: a slotted dataclass (equality, pickling, no per-instance dict).

    Equality and repr are the dataclass ones (field values compared as one tuple when the
    classes are the same; ``Name(field=value, ...)``; unhashable), written once here instead
    of generated and compiled per class: compiling them was two thirds of the cost of
    declaring a record, ~0.4 ms each, paid by every command at start-up (issue 17)."""
    out = dataclasses.dataclass(slots=True, eq=False, repr=False)(cls)
    names = tuple(f.name for f in dataclasses.fields(out))  # type: ignore[arg-type]
    values: Callable[[object], tuple[object, ...]]
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        values = lambda obj: (one(obj),)  # noqa: E731
    elif names:
        values = typing.cast(Callable[[object], tuple[object, ...]], operator.attrgetter(*names))
    else:
        values = lambda obj: ()  # noqa: E731
    methods = {
        "_record_values": staticmethod(values),
        "_record_names": names,
        "__eq__": _record_eq,
        "__repr__": _record_repr,
        "__hash__": None,
    }
    for name, value in methods.items():
        if name not in cls.__dict__:  # (a record's own method stays, as with dataclasses)
            setattr(out, name, value)
    return out


def _record_eq(self: object, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    values = self._record_values  # type: ignore[attr-defined]
    return bool(values(self) == values(other))


def _record_repr(self: object) -> str:
    fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._record_names)  # type: ignore[attr-defined]
    return f"{self.__class__.__qualname__}({fields})"


def is_record(tp: object) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


@cache
def field_types(cls: type) -> tuple[tuple[str, object], ...]:
    """(name, resolved type) of every public field of a record."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, hints[f.name]) for f in dataclasses.fields(cls) if not f.name.startswith("_")
    )


def _optional(tp: object) -> tuple[object, bool]:
    """``X | None`` → (X, True); anything else → (tp, False)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _is_detail_map(tp: object) -> bool:
    return get_origin(tp) is dict and get_args(tp)[1] == DetailValue


# -- to JSON -------------------------------------------------------------------------------------


#: the public field names of each record class met by :func:`to_jsonable` (None: not a record)
_JSON_FIELDS: dict[type, tuple[str, ...] | None] = {}
_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_jsonable(obj: object) -> JsonValue:
    """A record (recursively) as JSON-ready dicts and lists."""
    cls: type = type(obj)
    if cls in _PLAIN:
        return typing.cast(JsonValue, obj)
    names = _JSON_FIELDS.get(cls, ())
    if names == ():  # (first meeting: only the names are needed, not the resolved types)
        names = _JSON_FIELDS[cls] = (
            tuple(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))
            if is_record(cls)
            else None
        )
    if names is not None:
        return {name: to_jsonable(getattr(obj, name)) for name in names}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise ModelError(f"{type(obj).__name__} is not a model value")


# -- from JSON -----------------------------------------------------------------------------------


def from_jsonable(tp: type[T], data: object, where: str = "") -> T:
    """Rebuild a value of type ``tp`` from what :func:`to_jsonable` gave."""
    decode = _decoder(typing.cast(object, tp))
    return typing.cast(T, decode(data, where or getattr(tp, "__name__", "value")))


Decoder = Callable[[object, str], object]


@cache
def _decoder(tp: object) -> Decoder:
    inner, optional = _optional(tp)
    if optional:
        dec = _decoder(inner)
        return lambda v, w: None if v is None else dec(v, w)
    if tp is DetailValue or tp == DetailValue:
        return _detail_value
    if tp is float:
        return _float
    if tp in (int, str, bool):
        scalar = typing.cast(type, tp)

        def dec_scalar(v: object, w: str) -> object:
            if type(v) is not scalar:
                raise ModelError(f"{w}: expected {scalar.__name__}, got {type(v).__name__}")
            return v

        return dec_scalar
    origin = get_origin(tp)
    if origin is list:
        item = _decoder(get_args(tp)[0])

        def dec_list(v: object, w: str) -> object:
            if not isinstance(v, list):
                raise ModelError(f"{w}: expected a list, got {type(v).__name__}")
            return [item(x, f"{w}[{i}]") for i, x in enumerate(v)]

        return dec_list
    if origin is dict:
        val = _decoder(get_args(tp)[1])

        def dec_map(v: object, w: str) -> object:
            if not isinstance(v, dict):
                raise ModelError(f"{w}: expected an object, got {type(v).__name__}")
            return {str(k): val(x, f"{w}.{k}") for k, x in v.items()}

        return dec_map
    if is_record(tp):
        cls = typing.cast(type, tp)
        fields = [(n, _decoder(t)) for n, t in field_types(cls)]

        def dec_record(v: object, w: str) -> object:
            if not isinstance(v, dict):
                raise ModelError(f"{w}: expected an object, got {type(v).__name__}")
            kw = {n: d(v[n], f"{w}.{n}") for n, d in fields if n in v}
            try:
                return cls(**kw)
            except TypeError as exc:
                raise ModelError(f"{w}: {exc}") from None

        return dec_record
    raise ModelError(f"unsupported model type {tp!r}")


def _float(v: object, w: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ModelError(f"{w}: expected a number, got {type(v).__name__}")
    return float(v)


def _detail_value(v: object, w: str) -> object:
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, list) and all(isinstance(x, str | int | float) for x in v):
        return list(v)
    raise ModelError(f"{w}: not a detail value ({type(v).__name__})")


# -- polars / Parquet ----------------------------------------------------------------------------


@cache
def dtype_of(tp: object) -> pl.DataType:
    """The polars type that holds values of ``tp`` (maps become key/value lists)."""
    inner, _ = _optional(tp)
    if _is_detail_map(inner):
        return pl.Utf8()  # JSON text: the detail keys differ from rule to rule
    if inner in _SCALARS:
        return _SCALARS[inner]
    origin = get_origin(inner)
    if origin is list:
        return pl.List(dtype_of(get_args(inner)[0]))
    if origin is dict:
        return pl.List(pl.Struct({"key": pl.Utf8(), "value": dtype_of(get_args(inner)[1])}))
    if is_record(inner):
        return pl.Struct(schema_of(typing.cast(type, inner)))
    raise ModelError(f"no polars type for {tp!r}")


@cache
def schema_of(cls: type) -> pl.Schema:
    """The fixed polars schema of a record's table."""
    return pl.Schema({name: dtype_of(tp) for name, tp in field_types(cls)})


@cache
def _row_converter(tp: object) -> Callable[[object], object]:
    inner, optional = _optional(tp)
    if _is_detail_map(inner):
        return lambda v: None if v is None else json.dumps(v, sort_keys=True)
    if inner in _SCALARS:
        return lambda v: v
    origin = get_origin(inner)
    conv: Callable[[object], object]
    if origin is list:
        item = _row_converter(get_args(inner)[0])
        conv = lambda v: [item(x) for x in typing.cast(list[object], v)]  # noqa: E731
    elif origin is dict:
        val = _row_converter(get_args(inner)[1])
        conv = lambda v: [  # noqa: E731
            {"key": k, "value": val(x)} for k, x in typing.cast(dict[str, object], v).items()
        ]
    elif is_record(inner):
        names = [(n, _row_converter(t)) for n, t in field_types(typing.cast(type, inner))]
        conv = lambda v: {n: c(getattr(v, n)) for n, c in names}  # noqa: E731
    else:
        raise ModelError(f"no row form for {tp!r}")
    if optional:
        return lambda v: None if v is None else conv(v)
    return conv


def to_row(obj: object) -> dict[str, object]:
    """One record as a polars row (maps as key/value lists, details as JSON text)."""
    cls: type = type(obj)
    row = _row_converter(cls)(obj)
    return typing.cast(dict[str, object], row)


def frame_of(cls: type, rows: list[object]) -> pl.DataFrame:
    """Records of one class as a DataFrame with the class's fixed schema."""
    schema = schema_of(cls)
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame([to_row(r) for r in rows], schema=schema, orient="row")


def loose_types(cls: type) -> list[str]:
    """Fields of a record (and the records it nests) whose type is not a model type."""
    bad: list[str] = []
    seen: set[type] = set()

    def walk(c: type) -> None:
        if c in seen:
            return
        seen.add(c)
        for name, tp in field_types(c):
            try:
                dtype_of(tp)
            except ModelError:
                bad.append(f"{c.__name__}.{name}: {tp}")
                continue
            for sub in _records_in(tp):
                walk(sub)

    walk(cls)
    return bad


def _records_in(tp: object) -> list[type]:
    if is_record(tp):
        return [typing.cast(type, tp)]
    return [r for a in get_args(tp) for r in _records_in(a)]
