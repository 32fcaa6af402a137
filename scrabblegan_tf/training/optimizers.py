"""Adam with one fused kernel per variable update (same variables, same checkpoints as Keras')."""

from __future__ import annotations

import keras
import tensorflow as tf


def _tf_variable(v):
    """The ``tf.Variable`` behind a Keras variable (or ``v`` itself)."""
    return v.value if isinstance(v, keras.Variable) else v


class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose update of a float32 variable is one
    ``ResourceApplyAdam`` kernel instead of about ten elementwise passes.

    Keras 3's Adam (``keras/src/optimizers/adam.py``, ``update_step``) computes, with t the
    iteration + 1:
    ``alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)``; ``m += (g - m) * (1 - b1)``;
    ``v += (g^2 - v) * (1 - b2)``; ``var -= m * alpha / (sqrt(v) + eps)``.
    TensorFlow's ``ApplyAdam`` CPU/GPU functor (``tensorflow/core/kernels/training_ops.cc``,
    ``use_nesterov=False``) computes exactly these four lines, in one pass over the variable. The
    slots are Keras' own ``momentums``/``velocities``, so checkpoints are those of
    ``keras.optimizers.Adam`` (a run can switch between the two). ``amsgrad``, non-float32
    variables and sparse gradients take Keras' path. On the small networks of the ``cpu`` preset the
    Keras update was a tenth of the op time (bench/RESULTS.md).
    """

    def update_step(self, gradient, variable, learning_rate):
        if (self.amsgrad or isinstance(gradient, tf.IndexedSlices)
                or variable.dtype != "float32"):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m = _tf_variable(self._momentums[index])
        v = _tf_variable(self._velocities[index])
        t = tf.cast(self.iterations + 1, tf.float32)
        beta_1 = tf.cast(self.beta_1, tf.float32)
        beta_2 = tf.cast(self.beta_2, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=_tf_variable(variable).handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(beta_1, t), beta2_power=tf.pow(beta_2, t),
            lr=tf.cast(learning_rate, tf.float32), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, tf.float32), grad=tf.cast(gradient, tf.float32),
            use_locking=False, use_nesterov=False)
