import subprocess
import sys

import tfxfer


def test_import_is_light():
    # Importing tfxfer must not pull in TensorFlow, Keras or keras_hub.
    code = "import sys, tfxfer; print(sorted(m for m in ('tensorflow', 'keras', 'keras_hub') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in tfxfer.__all__:
        assert getattr(tfxfer, name) is not None
    assert tfxfer.__version__


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'HubLayer'"):
        _ = tfxfer.HubLayer
