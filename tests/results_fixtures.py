"""Results files for tests: a partial fixture completed into one that matches its schema.

A test states only the fields it is about; :func:`complete` fills every other
required field of ``ser.results``' schema with an empty value (0, "", [], {}),
entry by entry inside mappings keyed by data, so the readers' schema check
passes and the test still fails where its own fields are read wrongly.
"""
import typing
from typing import Any, NotRequired, Union

from ser import results


def empty(schema):
    """The smallest value of ``schema``: zeros, empty text and containers, required fields only."""
    if typing.is_typeddict(schema):
        return {k: empty(h) for k, h in typing.get_type_hints(schema).items() if k in schema.__required_keys__}
    origin = typing.get_origin(schema)
    if origin in (Union, typing.get_origin(int | None)):
        args = typing.get_args(schema)
        return None if type(None) in args else empty(args[0])
    return {dict: {}, list: []}.get(origin, {float: 0.0, int: 0, str: "", bool: False}.get(schema))


def fill(value, schema):
    """``value`` with every required field its schema lacks added as :func:`empty`."""
    if schema is Any or value is None:
        return value
    if typing.is_typeddict(schema) and isinstance(value, dict):
        hints = typing.get_type_hints(schema)
        out = dict(value)
        for k, h in hints.items():
            if typing.get_origin(h) is NotRequired:
                (h,) = typing.get_args(h)
            if k in value:
                out[k] = fill(value[k], h)
            elif k in schema.__required_keys__:
                out[k] = empty(h)
        return out
    origin = typing.get_origin(schema)
    if origin is dict and isinstance(value, dict):
        return {k: fill(v, typing.get_args(schema)[1]) for k, v in value.items()}
    if origin is list and isinstance(value, list):
        return [fill(v, typing.get_args(schema)[0]) for v in value]
    if origin in (Union, typing.get_origin(int | None)):
        for option in typing.get_args(schema):
            if not results.problems(fill(value, option), option):
                return fill(value, option)
    return value


def complete(key: str, partial: dict) -> dict:
    """``partial`` completed into a results file ``key`` that its schema accepts."""
    return fill(partial, results.FILES[key].schema)


def write(key: str, path, partial: dict) -> None:
    """Write ``partial``, completed, as results file ``key`` through ``ser.results.save``."""
    results.save(key, path, complete(key, partial))
