"""A small TOML writer for the configs the package generates (Python reads TOML with
tomllib but has no writer): nested tables, strings, numbers, booleans, arrays of those
and arrays of inline tables."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _key(k: str) -> str:
    if k and all(c.isalnum() or c in "-_" for c in k):
        return k
    return json.dumps(k)


def dumps(doc: Mapping[str, Any]) -> str:
    """`doc` as TOML text: plain values first, then one [section] per nested mapping."""
    out: List[str] = []

    def table(prefix: List[str], t: Mapping[str, Any]) -> None:
        plain = {k: v for k, v in t.items() if not isinstance(v, Mapping)}
        subs: Dict[str, Mapping] = {k: v for k, v in t.items() if isinstance(v, Mapping)}
        if prefix and (plain or not subs):
            out.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for k, v in plain.items():
            out.append(f"{_key(k)} = {_value(v)}")
        for k, v in subs.items():
            table(prefix + [k], v)

    table([], doc)
    return "\n".join(out) + "\n"


def merge(base: Dict[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """Deep-merges `extra` into `base` (tables merge, values replace); returns base."""
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = dict(v) if isinstance(v, Mapping) else v
    return base
