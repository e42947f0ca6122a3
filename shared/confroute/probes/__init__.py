"""Training the fused probes of a bundle (Semantic Entropy Probes, fused into the edge model's graph).

* :mod:`.data` - the JSONL training-set format.
* :mod:`.features` - TBG and SLT probe features (and sampled answers) collected with the Engine.
* :mod:`.labels` - correctness, binarised semantic entropy and dSE labels (1 = keep on the edge).
* :mod:`.logistic` - L2 logistic regression in numpy, standardisation folded into raw-feature weights.
* :mod:`.selection` - layer range and L2 chosen by cross-validation, validation AUROC.
* :mod:`.train` - the pipeline, and writing the probes with their provenance into the bundle.
* :mod:`.cli` - ``confroute-probe``.
"""
