"""The best children of each beam row, in order, with their perturbed scores: what one step of
stochastic beam search (``lab.search.sampling.gumbel_top_k``) draws.

Only each row's k+1 best children can make the beam's top k+1 (the k kept and the threshold
kappa), so only they are drawn, in order, without a Gumbel per vocabulary entry. Given the
parent's perturbed score T (the maximum of its children's independent Gumbel(phi_c) scores),
the children's scores in decreasing order are (the Gumbel-max trick, applied again to what
is left; Kool et al., 2019, sections 2-3; Vieira, 2014, "Gumbel-max trick and weighted
reservoir sampling"):

- the arg-max child is drawn from the children's probabilities and its score is T;
- given the first j, the (j+1)-th child is drawn from the remaining children's renormalized
  probabilities (the arg-max of independent Gumbels is independent of their maximum, and
  conditioning on a maximum below the j-th score is an event on that maximum alone), and its
  score is a Gumbel located at the log of the remaining mass (``parent phi + log(mass left)``)
  truncated below the j-th score, drawn as ``-log(exp(-G_j) + exp(-G'))`` with ``G'`` an
  untruncated Gumbel of that location.

That is k+1 draws by inversion (``lab.search.sampling.draw``) and k Gumbels per row and step
in place of a vocabulary of float64 Gumbels and truncations; the set sampled has the same law
(``tests/test_search_stochastic_diverse.py`` checks it against enumeration).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lab.search.sampling.draw import BLOCK, block_sums, invert
from lab.search.types import NEG_INF


def ordered_children(
    probs: Tensor, parent: Tensor, phi: Tensor, noise: Tensor, leaves: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The ``m = k + 1`` best children of every row and their perturbed scores, best first.

    ``probs`` ``(n*k, V)``: the children's weights (float32, any scale; zeroed in place as
    they are drawn); ``parent`` ``(n*k,)``: each row's perturbed score T (-inf: no children);
    ``phi`` ``(n*k,)``: the row's sampling log-prob; ``noise`` ``(n*k, 2m - 1)`` uniforms: m
    picking the children, then m - 1 for the Gumbels of the scores of the second on (module
    docstring); ``leaves`` ``(n, k)``: the scores of the ended outputs on the beam (-inf
    where none). Returns the tokens ``(n*k, m)``, scores ``(n*k, m)`` (float64; -inf once no
    child with probability is left) and the log of each row's total weight ``(n*k,)``.

    The draws stop early, for the whole batch, once no row's next child can make its
    sentence's k+1 best (each row's children come in decreasing order): the scores left
    undrawn are -inf, which changes neither the k kept nor the threshold.
    """
    rows, m, f64 = noise.size(0), (noise.size(1) + 1) // 2, torch.float64
    gumbels = -torch.log(-torch.log(noise[:, m:]))  # (n*k, m-1)
    sums = block_sums(probs, f64)  # (n*k, nb) float64: the remaining mass is a difference
    total = sums.sum(-1).clamp_min(torch.finfo(f64).tiny)  # (n*k,)
    tokens = torch.zeros(rows, m, dtype=torch.long, device=probs.device)  # (n*k, m)
    scores = torch.full((rows, m), NEG_INF, dtype=f64, device=probs.device)  # (n*k, m)
    prev = parent  # (n*k,) the last score drawn
    for j in range(m):
        tok, block, p, mass = invert(probs, sums, noise[:, j : j + 1])  # mass: still undrawn
        if j:
            loc = phi + (mass / total).log()  # (n*k,) where the remaining maximum is located
            prev = -torch.logaddexp(-prev, -(loc + gumbels[:, j - 1]))  # truncated below prev
        prev = prev.masked_fill(mass <= 0, NEG_INF)
        tokens[:, j], scores[:, j] = tok, prev
        if j + 1 == m or not _may_enter(scores[:, : j + 1], prev, leaves):
            break
        p.scatter_(1, (tok - block * BLOCK)[:, None], 0.0)  # (n*k, BLOCK) without tok
        sums.scatter_(1, block[:, None], p.sum(-1, keepdim=True, dtype=f64))  # exact
        probs.scatter_(1, tok[:, None], 0.0)
    return tokens, scores, total.log()


def _may_enter(scores: Tensor, last: Tensor, leaves: Tensor) -> bool:
    """Whether a row's next child (below its ``last`` score ``(n*k,)``) may still be among its
    sentence's k+1 best, given the children drawn so far ``(n*k, j)`` and ``leaves`` ``(n, k)``."""
    n, k = leaves.shape
    pool = torch.cat([scores.reshape(n, -1), leaves], dim=1)  # (n, k*j + k)
    if pool.size(1) <= k:
        return True
    kth = pool.topk(k + 1, dim=1).values[:, k]  # (n,) the (k+1)-th best so far
    return bool((last.view(n, k) > kth[:, None]).any())
