import json

import pytest
import tensorflow as tf

from tfxfer.distribute import select_strategy, strategy_selection


@pytest.fixture(autouse=True)
def _no_accelerator_environment(monkeypatch):
    for name in ("TPU_NAME", "COLAB_TPU_ADDR", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(strategy_selection.os.path, "exists", lambda path: False)


def test_auto_on_a_cpu_machine_is_the_default_strategy():
    choice = select_strategy("auto")
    assert choice.name == "default" and choice.replicas == 1
    assert choice.strategy is tf.distribute.get_strategy()
    assert choice.steps_per_execution == 1


def test_mirrored_on_request():
    choice = select_strategy("mirrored")
    assert isinstance(choice.strategy, tf.distribute.MirroredStrategy)


def test_auto_detects_tpus_and_workers(monkeypatch):
    assert strategy_selection._detect(tf) == "default"
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert strategy_selection._detect(tf) == "tpu"
    monkeypatch.delenv("COLAB_TPU_ADDR")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {}}))
    assert strategy_selection._detect(tf) == "multi_worker"
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not a valid cluster description"):
        strategy_selection._detect(tf)


def test_tpu_settings_and_unreachable_tpu(monkeypatch):
    class FakeResolver:
        def __init__(self, tpu):
            raise ValueError(f"Could not connect to {tpu}")

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", FakeResolver)
    with pytest.raises(RuntimeError, match="No TPU could be reached at 'grpc://x:8470'.*--strategy default"):
        select_strategy("tpu", tpu="grpc://x:8470")


def test_unknown_strategy():
    with pytest.raises(ValueError, match="strategy must be one of"):
        select_strategy("gpu")
