"""Orb example guest in Python: wasi:keyvalue (built with componentize-py)."""

from typing import Optional

import wit_world
from wit_world.imports import store


def _bucket() -> store.Bucket:
    # A keyvalue error is raised as an Err exception, which traps the call.
    return store.open("")


class WitWorld(wit_world.WitWorld):
    def counter(self) -> int:
        bucket = _bucket()
        raw = bucket.get("counter")
        current = 0 if raw is None else int(raw.decode("utf-8"))
        new = current + 1
        bucket.set("counter", str(new).encode("utf-8"))
        return new

    def get(self, key: str) -> Optional[str]:
        raw = _bucket().get(key)
        return None if raw is None else raw.decode("utf-8")

    def put(self, key: str, value: str) -> None:
        _bucket().set(key, value.encode("utf-8"))
