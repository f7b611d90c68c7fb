"""`select_strategy`: TPU, several GPUs, several workers, or the default."""

import contextlib
import dataclasses
import os
import signal
import threading

from tfxfer.choices import STRATEGY_NAMES as STRATEGIES
from tfxfer.distribute.worker_role import worker_role


@dataclasses.dataclass
class StrategyChoice:
    """A strategy and the training settings that suit it.

    Attributes:
        name: `"default"`, `"mirrored"`, `"multi_worker"` or `"tpu"`.
        strategy: the `tf.distribute.Strategy`.
        replicas: replicas in sync.
        steps_per_execution: steps per compiled call (many on TPU, where
            each host round trip is expensive).
        workers: processes training together (several under
            `MultiWorkerMirroredStrategy`).
        jit_compile: `compile(jit_compile=...)`: True where everything must
            compile with XLA (TPU), None for Keras' own choice.
        fixed_shapes: every training batch the same shape
            (`drop_remainder`), as XLA on a TPU needs.
    """

    name: str
    strategy: object
    replicas: int
    steps_per_execution: int = 1
    workers: int = 1
    jit_compile: bool = None
    fixed_shapes: bool = False

    def describe(self):
        replicas = f"{self.replicas} replica{'s' if self.replicas != 1 else ''}"
        return f"{self.name} ({self.workers} workers, {replicas})" if self.workers > 1 else f"{self.name} ({replicas})"


def select_strategy(name="auto", tpu=None):
    """Picks the distribution strategy.

    `"tpu_rehearsal"`: the default strategy (this machine's CPU or GPU) with
    exactly the training settings `"tpu"` uses (`tpu_settings`): a string
    op, a dynamic shape or an op XLA cannot compile in the train step fails
    here, in minutes, rather than on a Colab TPU.

    `"auto"`: `TPUStrategy` when a TPU is attached (Colab's TPU runtime, a TPU
    VM, or `TPU_NAME`/`COLAB_TPU_ADDR` set); `MultiWorkerMirroredStrategy` when
    `TF_CONFIG` names several workers; `MirroredStrategy` on several GPUs;
    otherwise the default strategy.

    Args:
        name: one of `"auto"`, `"default"`, `"mirrored"`, `"multi_worker"`,
            `"tpu"`, `"tpu_rehearsal"`.
        tpu: the TPU address for `TPUClusterResolver` (default: found from
            the environment, `"local"` on a TPU VM).

    Example:

    >>> choice = select_strategy("auto")
    >>> with choice.strategy.scope():
    ...     model = tfxfer.TransferModel.from_hub(handle, num_classes=2)
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}.")
    if name == "auto":
        name = _detect(tf)
    if name == "tpu":
        return _tpu_choice(tf, tpu)
    if name == "tpu_rehearsal":
        strategy = tf.distribute.get_strategy()
        return StrategyChoice(name, strategy, strategy.num_replicas_in_sync, **tpu_settings())
    if name == "multi_worker":
        workers = worker_role().workers
        with _keeping_sigterm_handler():
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return StrategyChoice(name, strategy, strategy.num_replicas_in_sync, workers=workers)
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    return StrategyChoice(name, strategy, strategy.num_replicas_in_sync)


def _detect(tf):
    if tpu_attached():
        return "tpu"
    if worker_role().workers > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


@contextlib.contextmanager
def _keeping_sigterm_handler():
    """TensorFlow's coordination service takes SIGTERM for its preemption notifier
    when a multi-worker strategy starts, and a preempted worker then trains on
    until SIGKILL. The caller's handler (the CLI's: stop like Ctrl-C, record the
    run as interrupted) is put back."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        yield
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def tpu_attached():
    """Whether this machine looks like it has a TPU (without touching it)."""
    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        return True
    return os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0")


def _tpu_choice(tf, tpu):
    address = tpu or os.environ.get("TPU_NAME") or _colab_address() or "local"
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        raise RuntimeError(
            f"No TPU could be reached at {address!r} ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}). On Colab, choose "
            "Runtime > Change runtime type > TPU; elsewhere pass --strategy default."
        ) from None
    strategy = tf.distribute.TPUStrategy(resolver)
    return StrategyChoice("tpu", strategy, strategy.num_replicas_in_sync, **tpu_settings())


def tpu_settings():
    """The training settings of a TPU run, shared by `"tpu"` and `"tpu_rehearsal"`.

    Many steps per compiled call (each host round trip is expensive), XLA
    for the whole step, and fixed batch shapes. (The compute format is
    `tfxfer.distribute.native_precision`'s: bfloat16 for both.)

    Example:

    >>> tpu_settings()["steps_per_execution"]
    32
    """
    return {"steps_per_execution": 32, "jit_compile": True, "fixed_shapes": True}


def _colab_address():
    address = os.environ.get("COLAB_TPU_ADDR")
    return f"grpc://{address}" if address else None


def runs_on_tpu(strategy):
    """Whether `strategy` trains on TPU cores."""
    import tensorflow as tf

    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def is_distributed(strategy):
    """Whether `strategy` trains several replicas, or on TPUs, several workers or parameter servers."""
    import tensorflow as tf

    kinds = (
        tf.distribute.MirroredStrategy,
        tf.distribute.MultiWorkerMirroredStrategy,
        tf.distribute.experimental.ParameterServerStrategy,
    )
    return strategy.num_replicas_in_sync > 1 or runs_on_tpu(strategy) or isinstance(strategy, kinds)
