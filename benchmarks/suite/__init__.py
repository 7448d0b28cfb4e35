"""The benchmark suite behind ``benchmarks/run.py``.

Modules:

* :mod:`~benchmarks.suite.measure`: timing helpers, FLOP arithmetic, the machine description;
* :mod:`~benchmarks.suite.tables`: Markdown tables and the rendering of ``RESULTS.md``;
* :mod:`~benchmarks.suite.settings`: what a full, ``--quick`` or ``--smoke`` run measures;
* :mod:`~benchmarks.suite.peak`: the machine's measured matmul and 3x3-convolution peak;
* :mod:`~benchmarks.suite.training`: training-step throughput of a model family;
* :mod:`~benchmarks.suite.inference`: Keras, SavedModel and TFLite latency and throughput;
* :mod:`~benchmarks.suite.accuracy`: per-class Dice and HD95 of the zoo entries;
* :mod:`~benchmarks.suite.distribution`: MirroredStrategy against the default strategy;
* :mod:`~benchmarks.suite.variants`: the U-Net training-step variants and their comparison;
* :mod:`~benchmarks.suite.targets`: the targets, judged from a run's results;
* :mod:`~benchmarks.suite.report`: the report's sections as Markdown;
* :mod:`~benchmarks.suite.worker`: measurements that need a fresh TensorFlow process.

Every module imports TensorFlow only inside the functions that measure, except
:mod:`~benchmarks.suite.peak`.
"""
