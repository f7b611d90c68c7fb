"""WiSE-FT: interpolating the fine-tuned backbone with the pretrained one."""

import dataclasses

import numpy as np

from tfxfer.freezing.layer_groups import named_backbone_variables
from tfxfer.models.lora_adapters import lora_factors, lora_layers

DEFAULT_MIXES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def wise_ft(model, mix, fine_tuned=None):
    """Sets the backbone to (1 − mix)·w⁰ + mix·w (Wortsman et al., CVPR 2022).

    w⁰ are the pretrained backbone weights the model keeps
    (`keep_source_weights=True`, or `--wise-ft` on the CLI) and w the
    fine-tuned ones. Every backbone variable is interpolated, BatchNorm
    statistics included; the head keeps its fine-tuned weights (the
    LP-FT + WiSE-FT recipe). With LoRA the merged kernels are interpolated
    (the frozen base toward w⁰, the adapter's B factor scaled by `mix`).
    mix=1 is the fine-tuned model, mix=0 the pretrained backbone under
    the fine-tuned head; inference costs nothing extra.

    Args:
        model: a fine-tuned `TransferModel` that keeps its source weights.
        mix: the weight of the fine-tuned weights, in [0, 1].
        fine_tuned: the fine-tuned weights to mix toward, as returned by an
            earlier call (default: the model's current backbone weights).
            Pass it to try several mixes of the same two end points.

    A model mixes once: its mix is recorded (`model.wise_ft_mix`, saved
    with it), and mixing an already mixed model again without `fine_tuned`
    is refused, since it would mix toward the mixed weights.

    Returns:
        The fine-tuned weights (`FineTunedWeights`, a dict `{path: array}`),
        to pass back as `fine_tuned`.

    Example:

    >>> fine_tuned = tfxfer.wise_ft(model, 0.5)
    >>> _ = tfxfer.wise_ft(model, 1.0, fine_tuned)  # back to fine-tuned
    """
    if isinstance(mix, bool) or not isinstance(mix, (int, float, np.floating)) or not 0.0 <= float(mix) <= 1.0:
        raise ValueError(f"mix must be a number in [0, 1] (the fine-tuned weights' share), got {mix!r}.")
    sources = _source_weights(model)
    adapted = _adapted_layers(model.backbone)
    if fine_tuned is None:
        if getattr(model, "wise_ft_mix", None) is not None:
            raise ValueError(
                f"This model's backbone is already WiSE-FT mixed (mix={model.wise_ft_mix:g}); mixing it again "
                "would mix toward the mixed weights. Mix the fine-tuned model itself (a run's "
                "checkpoints/best.keras), or pass fine_tuned= with what the first wise_ft call returned. "
                "If it was trained again since, set model.wise_ft_mix = None first."
            )
        fine_tuned = fine_tuned_weights(model)
    mix = float(mix)
    for path, variable in named_backbone_variables(model.backbone):
        if path not in fine_tuned:
            raise ValueError(f"fine_tuned has no value for backbone weight '{path}': pass what wise_ft returned.")
        end = fine_tuned[path]
        variable.assign(((1.0 - mix) * sources[path] + mix * end).astype(end.dtype))
    for path, layer in adapted.items():
        _, b, _ = lora_factors(layer)
        b.assign(mix * fine_tuned[f"{path}:lora_b"])
    model.wise_ft_mix = mix
    return fine_tuned


class FineTunedWeights(dict):
    """`{weight path: array}` of a backbone's fine-tuned weights; a short repr for notebooks."""

    def __repr__(self):
        size = sum(value.size for value in self.values())
        return f"FineTunedWeights({len(self)} backbone weights, {size:,} values)"


def fine_tuned_weights(model):
    """A copy of the backbone's current weights, as `wise_ft` takes them."""
    weights = FineTunedWeights(
        (path, np.array(variable.numpy())) for path, variable in named_backbone_variables(model.backbone)
    )
    for path, layer in _adapted_layers(model.backbone).items():
        weights[f"{path}:lora_b"] = np.array(lora_factors(layer)[1].numpy())
    return weights


@dataclasses.dataclass
class WiseFTCurve:
    """Validation scores of the interpolated models, and the chosen mix."""

    mixes: list
    scores: list
    metric: str
    best_mix: float

    def as_dict(self):
        return dataclasses.asdict(self)


def choose_wise_ft_mix(model, validation_data, mixes=DEFAULT_MIXES, metric="accuracy", verbose=0):
    """Tries each mix on `validation_data` and leaves the model at the best.

    Ties go to the larger mix (closer to the fine-tuned model).

    Args:
        model: a fine-tuned `TransferModel` that keeps its source weights.
        validation_data: what `model.evaluate` takes (a dataset of
            (inputs, labels), or an `(x, y)` tuple).
        mixes: the grid of mixes, each in [0, 1].
        metric: the `evaluate` metric to maximise ("accuracy"), or "loss"
            (minimised).
        verbose: `evaluate`'s verbosity.

    Returns:
        A `WiseFTCurve`.

    Example:

    >>> curve = choose_wise_ft_mix(model, val_ds)
    >>> curve.best_mix in curve.mixes
    True
    """
    mixes = [float(mix) for mix in mixes]
    if not mixes:
        raise ValueError("mixes must hold at least one value in [0, 1].")
    if validation_data is None:
        raise ValueError("Choosing the WiSE-FT mix needs validation data (validation_data=...).")
    fine_tuned = wise_ft(model, 1.0)  # refused for a model mixed before: its end point is gone
    scores = []
    for mix in mixes:
        wise_ft(model, mix, fine_tuned)
        scores.append(_score(model, validation_data, metric, verbose))
    signed = [-score if metric == "loss" else score for score in scores]
    best = max(range(len(mixes)), key=lambda i: (signed[i], mixes[i]))
    wise_ft(model, mixes[best], fine_tuned)
    return WiseFTCurve(mixes=mixes, scores=scores, metric=metric, best_mix=mixes[best])


def _score(model, validation_data, metric, verbose):
    if isinstance(validation_data, tuple):
        results = model.evaluate(*validation_data, verbose=verbose, return_dict=True)
    else:
        results = model.evaluate(validation_data, verbose=verbose, return_dict=True)
    if metric not in results:
        raise ValueError(f"metric must be one of the model's evaluate() results {sorted(results)}, got {metric!r}.")
    return float(results[metric])


def _source_weights(model):
    kept = model.source_weights.by_path() if model.source_weights is not None else {}
    missing = [path for path, _ in named_backbone_variables(model.backbone) if path not in kept]
    if missing:
        raise ValueError(
            "WiSE-FT needs the pretrained value w⁰ of every backbone weight, but this model keeps "
            f"{'none' if not kept else 'only those its regularizer needs'} ({len(missing)} missing, e.g. "
            f"'{missing[0]}'). Build it with keep_source_weights=True (on the CLI: --wise-ft) before "
            "fine-tuning."
        )
    return {path: np.array(weight.numpy()) for path, weight in kept.items()}


def _adapted_layers(backbone):
    """`{path of the adapted kernel: layer}` for LoRA layers."""
    by_id = {id(variable): path for path, variable in named_backbone_variables(backbone)}
    return {by_id[id(lora_factors(layer)[2])]: layer for layer in lora_layers(backbone)}
