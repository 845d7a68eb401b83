"""Orb example guest in Python (built with componentize-py)."""

import wit_world


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        return f"Hello, {name}! (from Python)"

    def word_count(self, text: str, min_len: int) -> int:
        return sum(1 for word in text.split() if len(word) >= min_len)
