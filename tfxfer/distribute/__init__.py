"""Choosing a `tf.distribute` strategy, and training on several workers."""

from tfxfer.distribute.local_cluster import LocalCluster, free_ports, worker_tf_config
from tfxfer.distribute.strategy_selection import StrategyChoice, select_strategy
from tfxfer.distribute.worker_role import WorkerRole, worker_role

__all__ = [
    "LocalCluster",
    "StrategyChoice",
    "WorkerRole",
    "free_ports",
    "select_strategy",
    "worker_role",
    "worker_tf_config",
]
