"""`native_precision`: the format `--mixed-precision auto` picks, with the detection faked."""

import pytest

from tfxfer.distribute.native_precision import cpu_feature_flags, native_precision


@pytest.mark.parametrize(
    "strategy, gpus, flags, policy, reason",
    [
        ("tpu", [], set(), "mixed_bfloat16", "TPUs compute in bfloat16"),
        ("tpu_rehearsal", [(9, 0)], set(), "mixed_bfloat16", "TPUs"),
        ("default", [(8, 0)], set(), "mixed_bfloat16", "compute capability 8.0 has bfloat16"),
        ("mirrored", [(9, 0), (7, 5)], set(), "mixed_float16", "7.5 has float16 tensor cores"),
        ("default", [(6, 1)], {"avx512_bf16"}, "float32", "6.1 has no fast half-precision"),
        ("default", [], {"avx512f", "avx512_bf16"}, "mixed_bfloat16", "natively (avx512_bf16)"),
        ("default", [], {"amx_bf16", "amx_tile"}, "mixed_bfloat16", "natively (amx_bf16)"),
        ("default", [], {"avx2", "avx512f"}, "float32", "no native bfloat16"),
    ],
)
def test_the_fastest_native_format_is_chosen_with_its_reason(strategy, gpus, flags, policy, reason):
    choice = native_precision(strategy, gpus=gpus, cpu_flags=flags)
    assert choice.policy == policy
    assert reason in choice.reason


def test_a_tf_hub_module_or_an_image_model_stays_float32_on_a_bfloat16_cpu():
    flags = {"avx512_bf16"}
    assert native_precision(gpus=[], cpu_flags=flags, modality="text").policy == "mixed_bfloat16"
    hub = native_precision(gpus=[], cpu_flags=flags, modality="text", backbone="tf_hub")
    assert hub.policy == "float32" and "dtypes it was saved with" in hub.reason
    image = native_precision(gpus=[], cpu_flags=flags, modality="image")
    assert image.policy == "float32" and "float32 for image models" in image.reason
    assert "TFDS" in native_precision(gpus=[], cpu_flags=flags, modality=None).reason
    # GPUs and TPUs keep their native format for every model.
    assert native_precision(gpus=[(8, 6)], modality="image", backbone="tf_hub").policy == "mixed_bfloat16"


def test_cpu_flags_come_from_cpuinfo_or_the_override(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    monkeypatch.delenv("TFXFER_CPU_FLAGS", raising=False)
    assert cpu_feature_flags(str(cpuinfo)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_feature_flags(str(tmp_path / "missing")) == set()
    monkeypatch.setenv("TFXFER_CPU_FLAGS", "")
    assert native_precision(gpus=[]).policy == "float32"
    monkeypatch.setenv("TFXFER_CPU_FLAGS", "avx512_bf16")
    assert native_precision(gpus=[]).policy == "mixed_bfloat16"
    # Written by hand: any case, commas too; the reason says where the flags came from.
    monkeypatch.setenv("TFXFER_CPU_FLAGS", "AVX2,AVX512_BF16")
    choice = native_precision(gpus=[])
    assert choice.policy == "mixed_bfloat16" and choice.reason.endswith("(TFXFER_CPU_FLAGS says so)")
