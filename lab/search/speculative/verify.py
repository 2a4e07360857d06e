"""How a drafted block is judged, for one sentence: the greedy rule (keep the drafts the target's
arg-max agrees with, then the target's own token) and the sampling rule of Leviathan et al.
(2023) and Chen et al. (2023) (keep draft ``d`` with probability ``min(1, p(d) / q(d))``; at the
first refusal draw from ``max(0, p - q)`` renormalized; after a full block draw from ``p``),
which leaves the output distributed exactly as sampling from the target.

Both take the target's processed log-probs ``p`` ``(g+1, V)`` over the block, the drafted tokens
``d`` ``(g,)`` and (sampling) the draft's processed log-probs ``q`` ``(g, V)`` they were drawn
from, and return how many drafts are kept and the token that follows them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lab.search.rng import uniform
from lab.search.sampling.draw import draw


def greedy_verdict(p: Tensor, d: Tensor) -> tuple[int, int]:
    """Drafts kept (the leading ones equal to the target's arg-max) and the target's next token."""
    best = p.max(dim=-1).indices  # (g+1,) the target's greedy token after each prefix
    agree = (best[: d.numel()] == d).long().cumprod(0)  # (g,) 1 while every draft so far agrees
    n = int(agree.sum())
    return n, int(best[n])


def sampled_verdict(p: Tensor, q: Tensor, d: Tensor, gen: torch.Generator) -> tuple[int, int]:
    """Drafts kept and the next token by acceptance-rejection: the output is distributed as
    sampling from ``p`` token by token, whatever the draft. One uniform per judged draft and
    one for the next token, from the sentence's own stream ``gen``."""
    p64, q64 = p.double().softmax(-1), q.double().softmax(-1)  # (g+1, V), (g, V)
    g = d.numel()
    rows = torch.arange(g, device=p.device)
    ratio = p64[rows, d] / q64[rows, d]  # (g,) q(d) > 0: d was drawn from q
    u = uniform([gen], 1, max(g, 1), p.device)[0, :g]  # (g,)
    refused = (u >= ratio).nonzero()  # (r, 1)
    n = int(refused[0, 0]) if refused.numel() else g
    if n < g:  # the first refusal: draw from the residual max(0, p - q)
        rest = (p64[n] - q64[n]).clamp_min(0.0)  # (V,)
        rest = rest if rest.sum() > 0 else p64[n]  # p = q up to rounding: no residual mass
        dist = (rest / rest.sum()).log()
    else:  # every draft kept: the target's own next token
        dist = p64[g].log()
    return n, int(draw(dist[None], uniform([gen], 1, 1, p.device))[0])
