"""Injected faults: the next N requests matching a path glob get a chosen answer and/or latency."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from .models import FaultSpec


@dataclass
class _Rule:
    spec: FaultSpec
    left: int


class Faults:
    def __init__(self) -> None:
        self._rules: list[_Rule] = []

    def add(self, spec: FaultSpec) -> None:
        self._rules.append(_Rule(spec, spec.times))

    def clear(self) -> None:
        self._rules.clear()

    def pending(self) -> list[dict[str, object]]:
        return [{**rule.spec.model_dump(), "left": rule.left} for rule in self._rules]

    def take(self, method: str, path: str) -> FaultSpec | None:
        """First matching rule, counted down; rules are used in the order they were added."""
        for rule in self._rules:
            spec = rule.spec
            if spec.method and spec.method.upper() != method:
                continue
            if not fnmatch.fnmatchcase(path, spec.path):
                continue
            rule.left -= 1
            if rule.left <= 0:
                self._rules.remove(rule)
            return spec
        return None
