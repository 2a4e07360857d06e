"""Plugin registries: one per plugin kind, filled by decorators and Python entry points.

A plugin registers itself with ``@REGISTRY.register("name")`` in its own module (imported by
the package ``__init__``); an installed package adds plugins through the entry-point group
``lab.<kind>`` (e.g. ``[project.entry-points."lab.model"] mymodel = "pkg.mod:MyModel"``),
loaded the first time a registry is asked for a name. Unknown names fail with the valid names
and a "did you mean"; a plug-in whose import fails is an error only when it is asked for, so
that one broken package does not break every run.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lab.errors import LabError

if TYPE_CHECKING:  # the contracts import the registries' users; only the types are needed
    from lab.search.contracts import Processor, Search

T = TypeVar("T")


class UnknownPluginError(LabError):
    """A plugin name that no registry entry answers to."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str


def _first_doc_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


class Registry(Generic[T]):
    """Name -> plugin (a class or factory) for one plugin kind."""

    def __init__(self, kind: str, description: str) -> None:
        self.kind = kind
        self.description = description
        self.group = f"lab.{kind}"
        self._entries: dict[str, Entry[T]] = {}
        self._entry_points_loaded = False
        self._broken: dict[str, str] = {}  # entry-point name -> why it failed to load

    def register(self, name: str, description: str | None = None) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (description: its docstring's first line)."""

        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name, obj, description or _first_doc_line(obj))
            return obj

        return deco

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name in self._entries:
                continue
            try:
                obj = ep.load()
            except Exception as e:  # noqa: BLE001 - one broken package must not break the others
                package = f"the package {ep.dist.name}" if ep.dist is not None else "its package"
                why = f"{type(e).__name__}: {' '.join(str(e).split())}"
                self._broken[ep.name] = (
                    f"{self.kind} '{ep.name}' ({ep.value}, from {package}) failed to load: "
                    f"{why}; fix or reinstall that package."
                )
                continue
            self._entries[ep.name] = Entry(ep.name, obj, _first_doc_line(obj))

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name in self._broken:
            raise LabError(self._broken[name])
        if name not in self._entries:
            raise UnknownPluginError(unknown_name_message(self.kind, name, self.names()))
        return self._entries[name].obj

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``plugin(*args, **kwargs)``; keywords the plugin does not take fail with one line.

        The arguments are bound to the plugin's signature before the call (``check_arguments``),
        so that a misspelled key is a ``LabError`` naming the valid keys, while a ``TypeError``
        raised inside the plugin surfaces as itself.
        """
        self.check_arguments(name, *args, **kwargs)
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def check_arguments(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Refuse, in one ``LabError`` line, arguments that ``plugin(*args, **kwargs)`` would not
        take or keys whose value has another kind than their default; builds nothing."""
        obj = self.get(name)
        try:
            sig = inspect.signature(obj)  # type: ignore[arg-type]
        except (TypeError, ValueError):  # builtins without a signature: nothing to check
            return
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            raise LabError(f"{self.kind}={name}: {_binding_message(e, sig, kwargs)}") from None
        for key, value in kwargs.items():  # a value of another kind than the key's default
            param = sig.parameters.get(key)
            if param is not None and param.default is not param.empty:
                check_type(f"{self.kind}.{key}", value, param.default)


def check_type(key: str, value: Any, default: Any) -> None:
    """``value`` must have the kind of ``default``: a bool, a whole number or a number."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, kind = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    else:
        return
    if not ok:
        raise LabError(f"{key} must be {kind}, got {value!r}; e.g. {key}={default}.")


def _binding_message(e: TypeError, sig: inspect.Signature, kwargs: dict[str, Any]) -> str:
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    keys = [
        n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    unknown = [k for k in kwargs if k not in keys]
    if unknown and not takes_any:
        close = difflib.get_close_matches(unknown[0], keys, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"unknown key '{unknown[0]}'.{hint} Valid keys: {', '.join(keys)}."
    return f"{e}."


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown {kind} '{name}'.{hint} Valid choices: {', '.join(valid)}."


MODELS: Registry[Any] = Registry("model", "decoder architectures (encode/step/reorder/score)")
SEARCHES: Registry[Callable[..., Search]] = Registry(
    "search", "search algorithms: search(model, batch) -> n-best"
)
PENALTIES: Registry[Any] = Registry("penalty", "length penalties / final scorers for beam search")
STOP_RULES: Registry[Any] = Registry("stop_rule", "when beam search may stop for a sentence")
PROCESSORS: Registry[Callable[..., Processor]] = Registry(
    "processor", "logits processors applied at every step"
)
TASKS: Registry[Any] = Registry("task", "tasks: data splits, references and default metrics")
METRICS: Registry[Any] = Registry("metric", "corpus metrics over hypotheses and references")
UTILITIES: Registry[Any] = Registry("utility", "MBR utilities u(hypothesis, pseudo-reference)")
SCORERS: Registry[Any] = Registry("scorer", "rerank features of a (source, output) pair")

ALL: dict[str, Registry[Any]] = {
    r.kind: r
    for r in (
        MODELS,
        SEARCHES,
        PENALTIES,
        STOP_RULES,
        PROCESSORS,
        TASKS,
        METRICS,
        UTILITIES,
        SCORERS,
    )
}
