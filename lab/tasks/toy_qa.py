"""Generated bAbI-style stories: people move between places and pick up and drop objects.

Each example is one short story followed by one question about its end state:

* ``where is <person> ?`` -> a place (``kitchen``);
* ``where is the <object> ?`` -> the place of the object (where its holder is, if held);
* ``what is <person> carrying ?`` -> the objects in the order picked up, comma-separated
  (``apple,football``), or ``nothing``.

Answering needs tracking several entities over the whole story (the latest move of a person,
who holds what, drops), like bAbI tasks 1, 2 and 8. Everything is lowercase with punctuation
as separate tokens. Deterministic given ``seed``; no source occurs in two splits.
"""

from __future__ import annotations

import random
from typing import Any

from lab.registry import TASKS
from lab.tasks.toy_splits import GeneratedTask

PEOPLE = ["mary", "john", "sandra", "daniel", "fred", "bill", "julie", "emily", "jeff", "lucy"]
PLACES = [
    "kitchen",
    "garden",
    "office",
    "hallway",
    "bathroom",
    "bedroom",
    "cellar",
    "garage",
    "park",
    "school",
]
OBJECTS = ["apple", "football", "milk", "book", "key", "ball", "box", "cup", "hat", "phone"]
MOVE_VERBS = ["went to", "moved to", "travelled to", "journeyed to", "went back to"]
PICK_VERBS = ["picked up", "got", "grabbed", "took"]
DROP_VERBS = ["dropped", "put down", "discarded", "left"]
MAX_CARRIED = 3
MIN_SENTENCES, MAX_SENTENCES = 2, 12


class _World:
    """The state a story describes: where each person and object is, who holds what."""

    def __init__(self) -> None:
        self.person_at: dict[str, str] = {}
        self.holding: dict[str, list[str]] = {}
        self.object_at: dict[str, str] = {}  # objects lying somewhere (not held)
        self.holder: dict[str, str] = {}

    def free_objects_here(self, person: str, objects: list[str]) -> list[str]:
        """Objects ``person`` may pick up: lying at their place, or not yet mentioned."""
        here = self.person_at[person]
        return [o for o in objects if o not in self.holder and self.object_at.get(o, here) == here]

    def object_place(self, obj: str) -> str | None:
        if obj in self.holder:
            return self.person_at.get(self.holder[obj])
        return self.object_at.get(obj)


def _act(rng: random.Random, w: _World, people: list[str], objects: list[str]) -> str:
    """One story sentence, applied to ``w``."""
    person = rng.choice(people)
    held = w.holding.setdefault(person, [])
    r = rng.random()
    if person in w.person_at and r < 0.5:
        free = w.free_objects_here(person, objects)
        if free and len(held) < MAX_CARRIED and (r < 0.3 or not held):
            obj = rng.choice(free)
            held.append(obj)
            w.holder[obj] = person
            w.object_at.pop(obj, None)
            return f"{person} {rng.choice(PICK_VERBS)} the {obj} ."
        if held:
            obj = rng.choice(held)
            held.remove(obj)
            del w.holder[obj]
            w.object_at[obj] = w.person_at[person]
            return f"{person} {rng.choice(DROP_VERBS)} the {obj} ."
    place = rng.choice([p for p in PLACES if p != w.person_at.get(person)])
    w.person_at[person] = place
    return f"{person} {rng.choice(MOVE_VERBS)} the {place} ."


def _question(rng: random.Random, w: _World, people: list[str]) -> tuple[str, str]:
    """A question about the final state of ``w`` and its answer."""
    located = [p for p in people if p in w.person_at]
    placed = [o for o in OBJECTS if w.object_place(o) is not None]
    r = rng.random()
    if r < 0.2 and placed:
        obj = rng.choice(placed)
        return f"where is the {obj} ?", w.object_place(obj) or ""
    if r < 0.6:
        person = rng.choice(located)
        return f"where is {person} ?", w.person_at[person]
    carriers = [p for p in located if w.holding.get(p)]
    person = rng.choice(carriers if carriers and rng.random() < 0.75 else located)
    return f"what is {person} carrying ?", ",".join(w.holding.get(person, [])) or "nothing"


def make_example(rng: random.Random) -> tuple[str, str]:
    """One (story + question, answer) pair."""
    people = rng.sample(PEOPLE, rng.randint(2, 4))
    objects = rng.sample(OBJECTS, rng.randint(2, 5))
    world = _World()
    n_sentences = rng.randint(MIN_SENTENCES, MAX_SENTENCES)
    story = [_act(rng, world, people, objects) for _ in range(n_sentences)]  # first one moves
    question, answer = _question(rng, world, people)
    return " ".join([*story, question]), answer


def generate(rng: random.Random, n: int, exclude: set[str] | None = None) -> list[tuple[str, str]]:
    """``n`` examples with distinct sources, none in ``exclude``."""
    seen = set(exclude or ())
    out: list[tuple[str, str]] = []
    while len(out) < n:
        src, answer = make_example(rng)
        if src not in seen:
            seen.add(src)
            out.append((src, answer))
    return out


@TASKS.register("toy_qa")
class ToyQA(GeneratedTask):
    """Generated bAbI-style stories with where/what-carrying questions (built in, no download).

    Options: ``n_train`` (5000), ``n_valid`` (500), ``n_test`` (500). Splits: train, valid,
    test. Source: the story and the question as one string; target: the answer (one word, a
    comma-separated list, or ``nothing``).
    """

    name = "toy_qa"
    default_metrics = ("squad", "babi")
    DEFAULTS: dict[str, Any] = {"n_train": 5000, "n_valid": 500, "n_test": 500}

    def generate(
        self, rng: random.Random, n: int, exclude: set[str] | None = None
    ) -> list[tuple[str, str]]:
        return generate(rng, n, exclude)
