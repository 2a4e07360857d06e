"""The reserved token ids every tokenizer and model of the lab shares.

Ids 0-3 are ``<pad>``, ``<s>``, ``</s>`` and ``<unk>``; batches are right-padded with
``PAD_ID``, decoding starts from ``BOS_ID`` and a finished output ends with ``EOS_ID``.
"""

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIAL_IDS = frozenset({PAD_ID, BOS_ID, EOS_ID, UNK_ID})

# A segment separator: texts that contain the piece SEP_PIECE (bAbI with task.facts=true: one
# segment per statement) get it as a user-defined symbol of their tokenizer, at id SEP_ID, so a
# model can find the segments of a source (the Transformer's model.facts=true).
SEP_PIECE, SEP_ID = "<sep>", 4
