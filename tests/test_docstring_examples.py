"""The docstring examples that need nothing from ../shared run as doctests.

Examples that load real models or data (`../shared`), or that continue a
longer story (`model.fit(train_ds)`), are documentation only; everything
listed here must run exactly as written.
"""

import doctest
import importlib

import pytest

DOCTESTED = [
    "tfxfer.preprocessing.image_preprocessor.ImagePreprocessor",
    "tfxfer.preprocessing.modality.preprocessor_modality",
    "tfxfer.models.classification_head.ClassificationHead.decode",
    "tfxfer.reports.classification_metrics.classification_metrics",
    "tfxfer.data.splitting.stratified_split",
    "tfxfer.data.image_pipeline.augmentation_layers",
    "tfxfer.optimizers.schedules.warmup_cosine",
    "tfxfer.recipes.fine_tune.fine_tuning_rate",
    "tfxfer.recipes",
    "tfxfer.regularizers.by_name.regularizer_from_name",
    "tfxfer.runs.class_matching.label_mapping",
    "tfxfer.option_errors",
    "tfxfer.utils.process_liveness.process_is_alive",
    "tfxfer.cli.native_logs.is_native_log_line",
    "tfxfer.faults",
    "tfxfer.data.image_folder.tensorflow_reason",
    "tfxfer.utils.owner_lock",
    "tfxfer.distribute.worker_role.worker_role",
    "tfxfer.distribute.local_cluster.worker_tf_config",
    "tfxfer.distribute.dataset_sharding.sharded_by_examples",
    "tfxfer.distribute.dataset_sharding.leaves_a_replica_empty",
    "tfxfer.distribute.multi_worker_fix",
    "tfxfer.distribute.strategy_selection.tpu_settings",
    "tfxfer.distribute.native_precision",
    "tfxfer.utils.xla_errors.xla_unsupported_ops",
    "tfxfer.data.length_bucketing.bucket_lengths",
    "tfxfer.data.length_bucketing.trimmed_to_bucket",
    "tfxfer.data.length_bucketing.grouped_by_length",
    "tfxfer.data.dataset_inspection.pipeline_ops",
    "tfxfer.recipes.lr_finder.steepest_descent",
    "tfxfer.regularizers.delta.attention_from_importance",
    "tfxfer.choices.fine_tuning_learning_rate",
    "tfxfer.runs.run_data.column_option",
    "tfxfer.reports.figure_files.drawable",
    "tfxfer.reports.figure_files.drawable_labels",
    "tfxfer.data.text_columns",
    "tfxfer.models.input_assertions",
    "tfxfer.freezing.group_declarations.checked_rules",
    "tfxfer.backbones.module_inputs",
]


def resolve(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted", DOCTESTED)
def test_docstring_example_runs(dotted):
    import numpy as np

    import tfxfer

    target = resolve(dotted)
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(
        target,
        dotted,
        globs={
            "np": np,
            "tfxfer": tfxfer,
            **vars(
                importlib.import_module(
                    target.__module__
                    if hasattr(target, "__module__") and not isinstance(target, type(doctest))
                    else target.__name__
                )
            ),
        },
    )
    examples = [test for test in tests if test.examples]
    assert examples, f"{dotted} has no docstring example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in examples:
        runner.run(test)
    assert runner.failures == 0, f"{dotted}: {runner.failures} failing example(s) (see the output above)"
