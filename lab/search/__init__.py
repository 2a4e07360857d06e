"""Search algorithms and their plug-ins.

A map of the package (each layer imports only the layers below it; ``lint-imports`` checks it):

    mbr.py                  minimum Bayes risk: ranks another search's outputs
    rerank/                 noisy-channel reranking: another search's outputs by weighted scorers
    speculative/            a draft model proposes blocks, the model verifies each in one call
    beam/                   greedy, beam, beam_lp, diverse_beam, the toolkit presets; penalties,
                            stop rules, candidates, the pool of finished hypotheses
    exact/                  exact and best_first: branch-and-bound over a node store
    sampling/               sample and stochastic_beam, per-sentence random streams
    processors/             logits processors: constraints, sampling warpers, UID regularizers
    driver.py               the step-by-step decoding loop, written once (``decode``)
    select.py               what mbr and rerank share: the inner search, its cost, ``Tunable``
    contracts.py            the ``Search`` and ``Processor`` contracts, ``call_search``
    limits.py, rng.py       output length limits; per-sentence random streams
    types.py                ``Hypothesis``, ``SearchOutput``, ``Cost``, ``NEG_INF``

A step-by-step search is a ``Stepper`` on the driver: its selection rule (``advance``), what it
records for a sentence that ends (``finish``) and how its tensors shrink (``keep``); the driver
does the rest. Top-2 sampling, whole (``tests/test_search_driver.py`` checks it against
enumeration)::

    class Top2:
        def __init__(self, procs, gens, eos):
            self.processors, self.gens, self.eos = procs, gens, eos
            self.logp = torch.zeros(len(gens), dtype=torch.float64)  # (n,) model log-prob

        def advance(self, step):
            top, tok = step.processed.topk(2, dim=-1)  # (n, 2)
            u = uniform(self.gens, 1, 1, top.device)  # (n, 1)
            pick = (u > top.double().softmax(-1)[:, :1]).long()  # (n, 1) 1: the second
            tok = tok.gather(1, pick).squeeze(1)  # (n,)
            self.logp += step.log_probs.gather(1, tok[:, None]).squeeze(1).double()
            return Move(tok, tok.eq(self.eos) | step.limit.le(step.t))

        def finish(self, sentences, tokens):
            out = [(tuple(tokens[i].tolist()), float(self.logp[i])) for i in sentences.tolist()]
            return [[Hypothesis(t, lp, lp, len(t), t[-1] == self.eos)] for t, lp in out]

        def keep(self, sentences, rows):
            self.logp, self.gens = self.logp[sentences], [self.gens[i] for i in sentences.tolist()]

    decode(model, src, src_lengths, Limits(), 1, lambda limit: Top2(procs, gens, model.eos_id))
"""

from lab.search import beam, exact, mbr, processors, rerank, sampling, speculative  # noqa: F401
from lab.search.types import Cost, Hypothesis, SearchOutput

__all__ = ["Cost", "Hypothesis", "SearchOutput"]
