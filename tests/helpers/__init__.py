"""What several test modules share, in one place (test modules never import one another):

- ``models``: ``TINY`` (tiny constructor settings per architecture), ``tiny_model``,
  ``sources`` (random padded batches)
- ``brute_force``: every output of a tiny model, scored and ranked (exact-search references)
- ``table_model``: ``TableModel``, a hand-built model with a fixed next-token table
- ``model_checks``: the decoding-state checks every architecture must pass; ``tiny_hf``
- ``hf_models``: tiny Hugging Face models behind the lab (fixtures) and ``generate`` beside them
- ``lab_process``: ``lab`` as a real process: ``TINY_RUN``/``tiny`` (the tiny run's overrides),
  a hermetic environment, ``lab`` and ``ok``
- ``wandb_env``: the offline W&B logger config and an isolated W&B environment
"""
