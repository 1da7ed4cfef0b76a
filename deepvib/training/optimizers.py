"""Adam (Kingma & Ba 2015, Algorithm 1 with the bias correction folded into the step size) with
one fused kernel per variable.

On a CPU, Keras' Adam updates each variable with about ten separate ops (its XLA path is for
GPUs only); `tf.raw_ops.ResourceApplyAdam` does the same arithmetic in one op. The slots (`m`,
`v`), their names and the checkpoint layout are Keras' own, so checkpoints move freely between
the two; sparse gradients, AMSGrad and adaptive epsilon fall back to Keras' update.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class FusedAdam(keras.optimizers.Adam):
    def update_step(self, gradient, variable):
        if isinstance(gradient, tf.IndexedSlices) or self.amsgrad or self.adaptive_epsilon:
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._index_dict[self._var_key(variable)]
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(self.learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=gradient,
            use_locking=False,
        )
