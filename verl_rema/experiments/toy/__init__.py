"""ReMA in miniature on the embedded arithmetic task (issue 13): a warm start on which SFT has plateaued below what a
verifiable reward can reach (:mod:`.warm_start`), and a pure-transformers greedy evaluator of the rollout's dialogue
protocol (:mod:`.evaluate`)."""
