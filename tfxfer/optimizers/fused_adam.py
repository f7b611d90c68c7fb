"""Keras' Adam, each weight updated by TensorFlow's fused Adam kernel.

Keras 3's `Adam.update_step` is a dozen element-wise ops per weight, each
reading and writing whole tensors: over MiniLM's 22.7 M weights that is
0.053 s per step on a 2-core CPU, a sixth of a bfloat16 step at 32 tokens.
TensorFlow's `ResourceApplyAdam` does the same arithmetic in one pass
(0.017 s; `benchmarks/roofline.py` prints both). The update is the same
formula as Keras' (bias-corrected step size, `epsilon` added after the
square root), on the same moment variables, so checkpoints and saved
models of either load into the other.

One difference: an embedding's sparse gradient (`tf.IndexedSlices`) is
summed per row before the update, as Adam is defined and as Keras 2's Adam
did. Keras 3's Adam squares each slice before adding the slices of a row
that a batch looked up more than once (its second moment gains
`1² + 2²` where Adam's gains `(1 + 2)²`), so text fine-tuning with
`keras.optimizers.Adam` gives slightly different numbers.

Where the fused kernel does not apply, the weight takes Keras' own update:
`amsgrad=True`, a distribution strategy (its per-replica variables are
Keras' to update), or a weight that is not float32.

`compile("auto")` and the recipes (`optimizer="adam"`) use it; an optimizer
object you pass is used as it is.

Example:

>>> import tfxfer
>>> optimizer = tfxfer.optimizers.FusedAdam(learning_rate=5e-5)
>>> optimizer.get_config()["learning_rate"]
5e-05
"""

import keras


@keras.saving.register_keras_serializable(package="tfxfer")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments) with TensorFlow's one-pass update kernel."""

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if self.amsgrad or tf.distribute.has_strategy() or variable.dtype != "float32":
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, tf.float32), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, tf.float32), step),
            lr=tf.cast(learning_rate, tf.float32),
            beta1=tf.cast(self.beta_1, tf.float32),
            beta2=tf.cast(self.beta_2, tf.float32),
            epsilon=tf.cast(self.epsilon, tf.float32),
            grad=tf.cast(tf.convert_to_tensor(gradient), tf.float32),
        )
