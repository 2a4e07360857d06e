"""Left-to-right searches that keep the K best prefixes of each sentence (greedy: K = 1), and
their plug-ins: length penalties, stop rules, the finished pool and the toolkit presets."""

from lab.search.beam import (  # noqa: F401  (registration)
    beam,
    beam_lp,
    constrained_beam,
    diverse_beam,
    greedy,
    penalties,
    presets,
    stop,
)
