"""`--strategy tpu_rehearsal`: a TPU run's exact settings, end to end on this CPU."""

import pytest

from tfxfer.distribute.strategy_selection import tpu_settings
from tfxfer.runs import TrainConfig, train_run

TPU_COMPILED = {
    "jit_compile": True,
    "steps_per_execution": tpu_settings()["steps_per_execution"],
    "fixed_batch_shapes": True,
    "length_bucketing": False,  # TPUs need fixed shapes
}


@pytest.fixture(scope="module")
def string_op_module(tmp_path_factory):
    """An image feature module with a string round trip in its forward pass: fine on CPU, not under XLA."""
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((None, None, 3))
    x = tf_keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    x = tf_keras.layers.Lambda(lambda t: tf.strings.to_number(tf.strings.as_string(t)), name="as_text")(x)
    path = tmp_path_factory.mktemp("hub") / "string_op_module"
    tf.saved_model.save(tf_keras.Model(inputs, x), str(path))
    return str(path)


def _config(tmp_path, **options):
    defaults = dict(
        runs_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "saved_models"),
        strategy="tpu_rehearsal",
        batch_size=4,
        epochs=1,
        head_epochs=1,
        head_learning_rate=0.05,
        learning_rate=0.01,
    )
    defaults.update(options)
    return TrainConfig(**defaults)


def _check_tpu_settings(metrics):
    assert metrics["strategy"].startswith("tpu_rehearsal")
    assert metrics["dtype_policy"] == "mixed_bfloat16"
    assert metrics["compiled_with"] == TPU_COMPILED
    assert metrics["export"]["max_abs_difference"] <= 1e-2  # bfloat16, with and without XLA


def test_image_run(image_module, image_folder, tmp_path):
    metrics = train_run(
        _config(
            tmp_path,
            backbone=image_module,
            data=str(image_folder),
            image_size=(10, 10),
            regularizer="l2_sp",
            layer_decay=0.8,
        ),
        verbose=0,
    )
    _check_tpu_settings(metrics)
    assert len(metrics["history"]["loss"]) == 2


def test_text_preset_run(tiny_bert_preset, text_file, tmp_path):
    metrics = train_run(
        _config(
            tmp_path, preset=tiny_bert_preset, data=str(text_file), validation_split=0.25, recipe="gradual", epochs=2
        ),
        verbose=0,
    )
    _check_tpu_settings(metrics)


def test_text_hub_run(dict_module, text_preprocessor_module, text_file, tmp_path):
    # The TF Hub preprocessor's string ops run in tf.data, on the host, never in the compiled step.
    metrics = train_run(
        _config(
            tmp_path,
            backbone=dict_module,
            preprocessor=text_preprocessor_module,
            data=str(text_file),
            validation_split=0.25,
        ),
        verbose=0,
    )
    _check_tpu_settings(metrics)


def test_a_step_xla_cannot_compile_fails_here(string_op_module, image_folder, tmp_path):
    options = dict(backbone=string_op_module, data=str(image_folder), image_size=(10, 10), export=False)
    train_run(_config(tmp_path / "default", strategy="default", **options), verbose=0)  # fine without XLA
    with pytest.raises(ValueError, match="cannot be compiled with XLA .* it uses AsString"):
        train_run(_config(tmp_path / "rehearsal", **options), verbose=0)
