"""Uncertainty of generated answers: reading final answers, sampling N answers cheaply, semantic entropy.

* :mod:`.answers` - final answers of generated text (numbers, multiple-choice letters, short text) and
  correctness against gold answers.
* :mod:`.ladder` - the arithmetic difficulty ladder (1- to 4-digit +, -, x; seeded).
* :mod:`.sampling` - N samples from one prefill of an :class:`~confroute.engine.Engine`.
* :mod:`.semantic_entropy` - clustering by semantic equivalence, discrete and likelihood-weighted SE,
  the dSE preference labels of arXiv 2502.11021 and the SEP best-split threshold.
* :mod:`.judge` - a model (e.g. the local cloud model) as the equivalence judge of the clustering.

Only :mod:`.sampling` and :mod:`.judge` need the engine (onnxruntime); the rest is pure numpy.
"""
