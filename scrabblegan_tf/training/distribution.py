"""Devices, distribution strategy and numeric precision of a training run.

- ``make_strategy``: default, MirroredStrategy (GPUs or logical CPUs) or MultiWorkerMirroredStrategy;
- ``resolve_mixed_precision``: the Keras dtype policy of ``run.mixed_precision`` (``auto``: mixed
  float16 on a GPU, mixed bfloat16 on a CPU with AMX or AVX512-BF16, float32 elsewhere) and why.
"""

from __future__ import annotations

import tensorflow as tf

from scrabblegan_tf.core.hardware import cpu_bf16_flags  # noqa: F401 (re-exported)
from scrabblegan_tf.training import multiworker


def configure_cpu_devices(n: int) -> None:
    """Split the first physical CPU into ``n`` logical devices (to try MirroredStrategy without
    GPUs). Must run before TensorFlow initialises its devices."""
    if n <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    except RuntimeError as e:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != n:
            raise RuntimeError(
                f"cannot split the CPU into {n} devices: TensorFlow is already initialised with "
                f"{existing}") from e


def configure_inter_op_threads(n: int) -> None:
    """Run at most ``n`` independent ops at a time (TensorFlow's inter-op thread pool; 0 keeps its
    default, one thread per core). Each op still uses every core (intra-op threads). With 1, the
    temporaries of independent ops (e.g. two layers' kernel gradients) never coexist: the paper
    config's training peaks ~210 MiB lower on 2 cores, ~4% slower (bench/RESULTS.md). Must run before
    TensorFlow initialises its runtime."""
    if n <= 0:
        return
    try:
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError as e:
        existing = tf.config.threading.get_inter_op_parallelism_threads()
        if existing != n:
            raise RuntimeError(
                f"cannot set {n} inter-op threads: TensorFlow is already initialised with "
                f"{existing or 'its default'}") from e


def make_strategy(name: str = "auto", cpu_devices: int = 0, inter_op_threads: int = 0):
    """``auto``: MirroredStrategy when more than one GPU is visible, else the default strategy;
    ``mirrored``: MirroredStrategy over all GPUs, or over the logical CPUs (``cpu_devices``);
    ``multi_worker``: MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG`` (see
    ``scrabblegan_tf.training.multiworker``; created once per process, before any other TensorFlow op);
    ``default``: no distribution. ``inter_op_threads``: ``configure_inter_op_threads`` (not with
    ``multi_worker``, whose collective ops wait on each other inside that pool)."""
    if name == "multi_worker":
        if inter_op_threads > 0:
            raise ValueError("run.inter_op_threads is not supported with --strategy=multi_worker "
                             "(collective ops need TensorFlow's inter-op threads)")
        # Before anything else touches TensorFlow: collective ops are configured at start-up.
        if cpu_devices > 1:
            raise ValueError("--cpu_devices is not supported with --strategy=multi_worker "
                             "(each worker uses its GPUs, or one CPU replica)")
        return multiworker.multi_worker_strategy()
    configure_inter_op_threads(inter_op_threads)
    configure_cpu_devices(cpu_devices)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "default" or (name == "auto" and len(gpus) <= 1 and cpu_devices <= 1):
        return tf.distribute.get_strategy()
    if name in ("auto", "mirrored"):
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(
            [d.name for d in cpus],
            cross_device_ops=tf.distribute.ReductionToOneDevice(reduce_to_device=cpus[0].name))
    raise ValueError(f"Unknown strategy {name!r}; choose auto, mirrored, multi_worker or default")



MIXED_PRECISION_POLICIES = ("", "auto", "mixed_float16", "mixed_bfloat16")


NETWORKS = ("G", "D", "R")


def float32_networks(spec: str) -> frozenset[str]:
    """``run.float32_networks`` ("R", "D,R", ...; "" none) -> the set of network letters."""
    nets = frozenset(n.strip().upper() for n in spec.split(",") if n.strip())
    if not nets <= set(NETWORKS):
        raise ValueError(f"run.float32_networks={spec!r}: comma-separated letters of {NETWORKS}")
    return nets


def resolve_mixed_precision(name: str, *, gpu: bool | None = None,
                            cpuinfo: str | None = None) -> tuple[str, str]:
    """``run.mixed_precision`` -> (Keras dtype policy name or "" for float32, why). ``auto``:
    ``mixed_float16`` (with loss scaling) when a GPU is visible, ``mixed_bfloat16`` on a CPU with
    AMX or AVX512-BF16 (``cpu_bf16_flags``), float32 elsewhere (bfloat16 is emulated, hence slower,
    on CPUs without them)."""
    if name not in MIXED_PRECISION_POLICIES:
        raise ValueError(f"run.mixed_precision={name!r}: choose one of {MIXED_PRECISION_POLICIES}")
    if name != "auto":
        return name, "set in the config" if name else "float32 set in the config"
    if gpu is None:
        gpu = bool(tf.config.list_logical_devices("GPU"))
    if gpu:
        return "mixed_float16", "auto: a GPU is visible"
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return "mixed_bfloat16", f"auto: the CPU has {' and '.join(flags)}"
    return "", "auto: float32, the CPU has neither AMX nor AVX512-BF16"



def check_same_step_on_all_workers(strategy, step_var) -> None:
    """Every worker must resume from the same checkpoint (the chief's): with a workdir that is not
    shared, a worker would start at step 0 while the others resume."""
    local = int(step_var.numpy())
    per_replica = strategy.run(lambda: tf.cast(step_var, tf.float32))
    total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
    if total != local * strategy.num_replicas_in_sync:
        raise RuntimeError(
            f"Workers resume from different steps (this one from {local}): every worker must see "
            f"the chief's checkpoints, so --workdir must be on a filesystem shared by all workers.")
