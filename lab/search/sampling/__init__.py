"""Searches that draw outputs from the model: ancestral sampling and stochastic beam search,
each sentence's draws from its own random stream (``lab.search.rng``)."""

from lab.search.sampling import sample, stochastic_beam  # noqa: F401  (registration)
