"""Multi-worker (multi-host) training with ``tf.distribute.MultiWorkerMirroredStrategy``.

Train on several machines
-------------------------

``--strategy=multi_worker`` runs one ``train_main.py`` process per machine (a *worker*); the
workers find each other through the ``TF_CONFIG`` environment variable, the same cluster on every
machine, each with its own ``task``. Every worker uses all its local GPUs (or its CPU), and every
training step is synchronous over all replicas of all workers (collective all-reduce of gradients,
batch-norm statistics and the gradient-balancing std). Example with two machines, ``host1`` (the
chief, worker 0) and ``host2``:

.. code-block:: bash

    # on host1
    export TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                       "task": {"type": "worker", "index": 0}}'
    python train_main.py --strategy=multi_worker --dataset=iam --manual_dir=/data/iam \\
        --workdir=/shared/runs/iam
    # on host2: the same command, with "index": 1 in TF_CONFIG
    export TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                       "task": {"type": "worker", "index": 1}}'
    python train_main.py --strategy=multi_worker --dataset=iam --manual_dir=/data/iam \\
        --workdir=/shared/runs/iam

- Start all workers with the same flags (config, seed, dataset). ``--batch_size`` stays the batch
  *per replica*: the global batch is ``batch_size x g_every x`` (replicas of all workers).
- Every worker reads the same input pipeline with the same seed, so all of them see the same global
  batch; replica ``r`` (``replica_id_in_sync_group``, numbered over all workers) trains on rows
  ``[r * B, (r + 1) * B)`` of each mini-batch. No data sharding to configure, and the input
  position is checkpointed like in a single-process run.
- ``--workdir`` must be on a filesystem that all workers see (NFS or similar): the chief
  (worker 0, or the task of type ``chief`` if there is one) writes ``config.json``, ``alphabet.json``,
  TensorBoard summaries, sample grids and ``checkpoints/``; the other workers take part in every
  checkpoint save (the variables are read collectively) but write to a temporary
  ``checkpoints_tmp_<task>_<index>/`` that they delete right after, as in TensorFlow's multi-worker
  tutorial. On resume every worker restores the chief's latest checkpoint; workers that would
  resume from different steps (e.g. a workdir that is not shared) stop with an error.
- The port in ``TF_CONFIG`` must be free and reachable between the machines. If a worker dies the
  others stop at the next collective (TensorFlow's coordination service reports the failed task);
  restart all workers with the same command and they resume from the last checkpoint.
- A ``SIGTERM`` to any worker makes all of them save a checkpoint after the current iteration and
  exit (the stop request is all-reduced with the training step).

The strategy must be created before TensorFlow runs any other operation (collective ops are set up
at start-up): ``train()`` creates it first thing; code that builds tensors before calling
``train()`` (tests feeding an in-memory dataset) calls ``make_strategy("multi_worker")`` first.
"""

from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf

_STRATEGY = None


def cluster_from_env() -> dict:
    """The parsed ``TF_CONFIG`` (empty dict when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    return json.loads(raw) if raw else {}


def multi_worker_strategy():
    """The process's ``MultiWorkerMirroredStrategy`` (created once; TensorFlow allows only one, made
    before any other op), with the cluster from ``TF_CONFIG``."""
    global _STRATEGY
    if _STRATEGY is not None:
        return _STRATEGY

    tf_config = cluster_from_env()
    if not tf_config.get("cluster"):
        raise ValueError(
            "--strategy=multi_worker needs the cluster in the TF_CONFIG environment variable, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\'')
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    implementation = (tf.distribute.experimental.CommunicationImplementation.AUTO
                      if tf.config.list_physical_devices("GPU")
                      else tf.distribute.experimental.CommunicationImplementation.RING)
    _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver,
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=implementation))
    return _STRATEGY


def is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def task(strategy) -> tuple[str | None, int]:
    """(task type, task index) of this process; (None, 0) outside multi-worker training."""
    if not is_multi_worker(strategy):
        return None, 0
    resolver = strategy.cluster_resolver
    return resolver.task_type, int(resolver.task_id or 0)


def num_workers(strategy) -> int:
    """Processes in the cluster (workers and chief); 1 outside multi-worker training."""
    if not is_multi_worker(strategy):
        return 1
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(spec.get(t, ())) for t in ("chief", "worker"))


def is_chief(strategy) -> bool:
    """True for the process that writes summaries, samples, configs and the kept checkpoints: the
    only process of a non-multi-worker run; in a cluster the ``chief`` task, or worker 0 when the
    cluster has no chief."""
    task_type, task_id = task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in (strategy.cluster_resolver.cluster_spec().as_dict() or {})
    return task_type == "worker" and task_id == 0 and not has_chief


def checkpoint_dir(workdir: str, strategy) -> str:
    """Where this process writes checkpoints: ``workdir/checkpoints`` for the chief, a temporary
    per-task folder for the other workers (deleted after each save by ``cleanup_after_save``)."""
    if is_chief(strategy):
        return os.path.join(workdir, "checkpoints")
    task_type, task_id = task(strategy)
    return os.path.join(workdir, f"checkpoints_tmp_{task_type}_{task_id}")


def cleanup_after_save(workdir: str, strategy) -> None:
    """Non-chief workers delete the checkpoint they just wrote (it only existed so that every worker
    takes part in the collective save)."""
    if not is_chief(strategy):
        shutil.rmtree(checkpoint_dir(workdir, strategy), ignore_errors=True)
