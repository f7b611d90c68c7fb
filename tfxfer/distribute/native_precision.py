"""`native_precision`: the fastest number format the hardware computes natively, and why.

`--mixed-precision auto` asks this module. What it looks at, in order:

- a TPU (the strategy is `tpu` or `tpu_rehearsal`): bfloat16, its native format;
- GPUs: `tf.config.experimental.get_device_details` gives each one's compute
  capability. 8.0 and newer (A100, H100, RTX 30xx/40xx) compute bfloat16 in
  their tensor cores; 7.x (V100, T4) compute float16 there, which needs loss
  scaling (Keras wraps the optimizer in a `LossScaleOptimizer`); older GPUs
  have no fast half-precision path, so float32;
- the CPU: the flags in `/proc/cpuinfo`. `avx512_bf16` (Cooper Lake, Zen 4
  and newer) or `amx_bf16` (Sapphire Rapids and newer) mean oneDNN computes
  bfloat16 matmuls natively; without them bfloat16 is emulated and slower,
  so float32. With them, only text models on a Keras (KerasHub) backbone
  train in bfloat16: image models gained nothing, and a TF Hub module
  computes in the dtypes it was saved with.

`--mixed-precision off` (`mixed_precision="off"`) keeps float32 whatever the
hardware; `mixed_bfloat16` or `mixed_float16` force one. Setting the
environment variable `TFXFER_CPU_FLAGS` (e.g. to an empty string) replaces
what `/proc/cpuinfo` says, to try the choice another CPU would get.

Example:

>>> native_precision(cpu_flags={"avx512f", "avx512_bf16"}, gpus=[]).policy
'mixed_bfloat16'
>>> native_precision(cpu_flags={"avx2"}, gpus=[]).policy
'float32'
>>> native_precision(gpus=[(7, 5)]).policy
'mixed_float16'
"""

import dataclasses
import os

# CPU flags (as /proc/cpuinfo names them) of native bfloat16 matmuls.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """A Keras dtype policy name and the reason it was chosen.

    Attributes:
        policy: `"mixed_bfloat16"`, `"mixed_float16"` or `"float32"`.
        reason: one sentence for the run's log, report and `metrics.json`.
    """

    policy: str
    reason: str


def native_precision(strategy_name="default", gpus=None, cpu_flags=None, modality="text", backbone="keras_hub"):
    """The dtype policy the hardware computes fastest, with the reason.

    Args:
        strategy_name: the chosen strategy's name (`StrategyChoice.name`).
        gpus: the GPUs' compute capabilities as `(major, minor)` pairs
            (default: asked of TensorFlow).
        cpu_flags: the CPU's feature flags (default: `TFXFER_CPU_FLAGS`, or
            read from `/proc/cpuinfo`).
        modality: `"text"`, `"image"`, or None (not known yet). On a CPU,
            only text models train in bfloat16: an image backbone's
            depthwise convolutions and BatchNorm are not matmuls, and
            EfficientNet-Lite0's step gained nothing (0.99×), so `auto`
            keeps images in float32 there rather than risk a slower run.
        backbone: `"keras_hub"` (a Keras backbone, which computes in the
            policy's dtype) or `"tf_hub"` (a SavedModel, which computes in
            the dtypes it was saved with: bfloat16 would change only the
            head, so on a CPU it stays float32).

    Returns:
        A `PrecisionChoice`.
    """
    if strategy_name in ("tpu", "tpu_rehearsal"):
        return PrecisionChoice("mixed_bfloat16", "TPUs compute in bfloat16")
    if gpus is None:
        gpus = gpu_compute_capabilities()
    if gpus:
        slowest = min(gpus)
        shown = ".".join(map(str, slowest))
        if slowest >= (8, 0):
            return PrecisionChoice("mixed_bfloat16", f"GPU compute capability {shown} has bfloat16 tensor cores")
        if slowest >= (7, 0):
            return PrecisionChoice(
                "mixed_float16", f"GPU compute capability {shown} has float16 tensor cores (with loss scaling)"
            )
        return PrecisionChoice("float32", f"GPU compute capability {shown} has no fast half-precision path")
    told = ""
    if cpu_flags is None:
        cpu_flags = cpu_feature_flags()
        told = f" ({CPU_FLAGS_VARIABLE} says so)" if CPU_FLAGS_VARIABLE in os.environ else ""
    native = ", ".join(flag for flag in BFLOAT16_CPU_FLAGS if flag in cpu_flags)
    if not native:
        return PrecisionChoice("float32", f"the CPU has no native bfloat16 (neither avx512_bf16 nor amx_bf16){told}")
    has_it = f"the CPU computes bfloat16 natively ({native}){told}"
    if backbone == "tf_hub":
        return PrecisionChoice(
            "float32",
            f"{has_it}, but a TF Hub module computes in the dtypes it was saved with, so only the head "
            "would change: float32",
        )
    if modality != "text":
        what = "image models" if modality == "image" else "data whose modality is known only once it loads (TFDS)"
        return PrecisionChoice("float32", f"{has_it}, but only text models train faster in it; float32 for {what}")
    return PrecisionChoice("mixed_bfloat16", has_it)


def forced_precision(name, strategy_name="default", gpus=None):
    """The format `--mixed-precision NAME` forces (`off`: float32), and a reason that says where it is not native.

    Example:

    >>> forced_precision("off").policy
    'float32'
    """
    if name == "off":
        return PrecisionChoice("float32", "--mixed-precision off")
    if name == "mixed_float16" and strategy_name not in ("tpu", "tpu_rehearsal"):
        if not (gpu_compute_capabilities() if gpus is None else gpus):
            return PrecisionChoice(
                "mixed_float16",
                "--mixed-precision mixed_float16; a CPU has no native float16, so steps are slower than in float32 "
                "(--mixed-precision auto picks the fastest format)",
            )
    return PrecisionChoice(name, f"--mixed-precision {name}")


CPU_FLAGS_VARIABLE = "TFXFER_CPU_FLAGS"


def cpu_feature_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags: `TFXFER_CPU_FLAGS` (space- or comma-separated) if set, else `/proc/cpuinfo`'s."""
    override = os.environ.get(CPU_FLAGS_VARIABLE)
    if override is not None:
        return set(override.lower().replace(",", " ").split())
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):  # x86, ARM
                    return set(value.split())
    except OSError:
        pass  # not Linux: no flags known, so no native bfloat16 assumed
    return set()


def gpu_compute_capabilities():
    """`(major, minor)` of each visible GPU (empty without GPUs)."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        if details.get("compute_capability"):
            capabilities.append(tuple(details["compute_capability"]))
    return capabilities
