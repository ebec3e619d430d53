"""Two-role SFT warm-up through veRL's own SFT trainer (``python -m verl_rema.sft +recipe=NAME``).

ReMA's multi-turn runs start from a model fine-tuned on two-role dialogues (arXiv 2503.09501 App. D.2.1). Here the
dialogues (:mod:`.dialogues`) are played through the rollout's own protocol into one chat per role (:mod:`.views`),
written as veRL multi-turn SFT rows (:mod:`.data`), and trained by veRL's ``SFTTrainer`` with its
``MultiTurnSFTDataset``, whose loss mask :mod:`.dataset` narrows to the tokens the rollout samples. :mod:`.end_of_turn`
makes the chat template's end-of-turn token the checkpoint's eos, so generation stops after each message.
"""
