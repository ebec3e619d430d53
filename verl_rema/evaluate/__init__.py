"""Evaluation harness: a model with the ReMA dialogue (or the CoT baseline) over an evaluation parquet.

``python -m verl_rema.evaluate`` runs veRL's own validation pass on the composed verl-rema config (see
:mod:`.__main__`), the ``rema_eval`` trainer mode (:mod:`.trainer`) records each sample's subset and dialogue
fields beside veRL's dump, :mod:`.samples` reads the two back, :mod:`.report` computes per-subset accuracy with
95% intervals and writes ``results.{md,json,csv,png}``, and :mod:`.compare` puts several runs side by side
(:mod:`.writers`: the table, CSV and chart formats they share).
Nothing is imported here, so the report and the comparison need neither veRL nor Ray.
"""
