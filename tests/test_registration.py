"""`import tfxfer` registers what a `.keras` file needs, without importing Keras early."""

import subprocess
import sys

import pytest

import tfxfer

LOAD = "import keras; model = keras.models.load_model({path!r}); print(type(model).__name__, model.class_names)"


@pytest.fixture(scope="module")
def saved_model_file(image_module, tmp_path_factory):
    model = tfxfer.TransferModel.from_hub(
        image_module,
        num_classes=2,
        input_shape=(8, 8, 3),
        class_names=["dark", "light"],
        regularizer=tfxfer.regularizers.L2SP(alpha=0.01),
    )
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model.save(path)
    return str(path)


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "prelude",
    [
        "import tfxfer",
        "import keras; import tfxfer",
        "import tfxfer; import tensorflow",
        "import tensorflow; import tfxfer",
        "import tfxfer; import keras_hub",
    ],
)
def test_plain_keras_load_model_works_after_import_tfxfer(prelude, saved_model_file):
    result = run_python(f"{prelude}; " + LOAD.format(path=saved_model_file))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TransferModel ['dark', 'light']" in result.stdout


def test_without_import_tfxfer_keras_cannot_load_it(saved_model_file):
    # Shows the registration is what makes loading work (and is still needed).
    result = run_python(LOAD.format(path=saved_model_file))
    assert result.returncode != 0
    assert "TransferModel" in result.stderr


def test_import_tfxfer_and_the_cli_parser_do_not_import_tensorflow():
    result = run_python(
        "import sys, tfxfer; from tfxfer.cli.main import build_parser; build_parser(); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"
