"""Choosing a `tf.distribute` strategy for the machine at hand."""

from tfxfer.distribute.strategy_selection import StrategyChoice, select_strategy

__all__ = ["StrategyChoice", "select_strategy"]
