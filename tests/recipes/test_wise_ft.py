import keras
import numpy as np
import pytest

import tfxfer
from tests.models.test_lora_adapters import sentences, text_model
from tfxfer.freezing.layer_groups import named_backbone_variables
from tfxfer.models.lora_adapters import lora_factors, lora_layers, merged_kernel
from tfxfer.recipes import choose_wise_ft_mix, wise_ft


def fine_tuned(lora=False):
    model = text_model(keep_source_weights=True)
    if lora:
        model.enable_lora(rank=2)
    else:
        model.unfreeze()
    texts, labels = sentences()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(texts, labels, epochs=2, verbose=0)
    return model


def backbone_values(model):
    return {path: variable.numpy() for path, variable in named_backbone_variables(model.backbone)}


@pytest.mark.parametrize("lora", [False, True])
def test_mixes_interpolate_the_backbone_and_keep_the_head(lora):
    model = fine_tuned(lora)
    source = {path: weight.numpy() for path, weight in model.source_weights.by_path().items()}
    head = [w.numpy() for w in model.head.weights]
    texts, _ = sentences(8)
    x = model.preprocessor(texts)
    end = model(x).numpy()
    merged_end = [merged_kernel(layer).numpy() for layer in lora_layers(model.backbone)]
    weights = wise_ft(model, 0.25)
    if not lora:
        for path, value in backbone_values(model).items():
            np.testing.assert_allclose(value, 0.75 * source[path] + 0.25 * weights[path], atol=1e-6)
    for layer, merged in zip(lora_layers(model.backbone), merged_end):
        kernel_path = next(p for p, v in named_backbone_variables(model.backbone) if v is lora_factors(layer)[2])
        np.testing.assert_allclose(merged_kernel(layer), 0.75 * source[kernel_path] + 0.25 * merged, atol=1e-5)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(head, model.head.weights))
    wise_ft(model, 0.0, weights)
    for path, value in backbone_values(model).items():
        np.testing.assert_allclose(value, source[path], atol=1e-6)
    wise_ft(model, 1.0, weights)
    np.testing.assert_allclose(model(x), end, atol=1e-5)
    assert repr(weights).startswith("FineTunedWeights(") and len(repr(weights)) < 80


def test_a_mixed_model_is_not_mixed_again_by_mistake(tmp_path):
    model = fine_tuned()
    wise_ft(model, 0.5)
    assert model.wise_ft_mix == 0.5
    mixed = backbone_values(model)
    with pytest.raises(ValueError, match="already WiSE-FT mixed \\(mix=0.5\\).*checkpoints/best.keras"):
        wise_ft(model, 0.5)
    assert all(np.array_equal(mixed[path], value) for path, value in backbone_values(model).items())
    model.save(tmp_path / "mixed.keras")  # the record survives saving
    reloaded = keras.models.load_model(tmp_path / "mixed.keras")
    assert reloaded.wise_ft_mix == 0.5
    with pytest.raises(ValueError, match="already WiSE-FT mixed"):
        choose_wise_ft_mix(reloaded, sentences(8))


def test_the_mix_is_chosen_on_validation_data():
    model = fine_tuned()
    texts, labels = sentences(16, seed=3)
    curve = choose_wise_ft_mix(model, (texts, labels), mixes=[0.0, 0.5, 1.0], metric="loss")
    assert curve.mixes == [0.0, 0.5, 1.0] and len(curve.scores) == 3
    assert curve.best_mix == curve.mixes[int(np.argmin(curve.scores))]
    loss = model.evaluate(texts, labels, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(min(curve.scores), rel=1e-5)


def test_bad_mixes_and_missing_source_weights_are_named():
    model = fine_tuned()
    for mix in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match="mix must be a number in \\[0, 1\\]"):
            wise_ft(model, mix)
    plain = text_model()
    with pytest.raises(ValueError, match="keep_source_weights=True"):
        tfxfer.wise_ft(plain, 0.5)
    with pytest.raises(ValueError, match="validation data"):
        choose_wise_ft_mix(model, None)
