"""`FusedAdam` (one `ResourceApplyAdam` per variable) is Keras' Adam: the same trajectory,
the same slots, and checkpoints that move between the two."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from deepvib.training.optimizers import FusedAdam


def small_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(8, activation="tanh", name="hidden"),
                              keras.layers.Dense(3, name="out")])
    model.build((None, 5))
    return model


def train_steps(optimizer: keras.optimizers.Optimizer, steps: int = 10):
    model = small_model()
    x = tf.random.stateless_normal([16, 5], [1, 2])
    y = tf.random.stateless_normal([16, 3], [3, 4])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - y) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    for _ in range(steps):
        step()
    return model, optimizer


def decaying_rate():
    return keras.optimizers.schedules.ExponentialDecay(1e-2, 3, 0.5, staircase=True)


@pytest.mark.parametrize("rate", [1e-2, "schedule"])
def test_fused_adam_follows_keras_adam(rate):
    """Ten steps with beta1 = 0.5 (and a staircase schedule): weights and both moments agree
    to float32 rounding, and the weights moved (the steps were taken)."""
    def lr():
        return decaying_rate() if rate == "schedule" else rate

    ref_model, ref_opt = train_steps(keras.optimizers.Adam(lr(), beta_1=0.5))
    model, opt = train_steps(FusedAdam(lr(), beta_1=0.5))
    start = small_model()
    for got, want, init in zip(model.trainable_variables, ref_model.trainable_variables,
                               start.trainable_variables, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-6)
        assert np.abs(got.numpy() - init.numpy()).max() > 1e-3
    assert [v.name for v in opt.variables] == [v.name for v in ref_opt.variables]
    for got, want in zip(opt.variables, ref_opt.variables, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("saved_with, restored_with", [
    (keras.optimizers.Adam, FusedAdam), (FusedAdam, keras.optimizers.Adam)])
def test_checkpoints_move_between_keras_adam_and_fused_adam(tmp_path, saved_with, restored_with):
    model, opt = train_steps(saved_with(1e-2))
    path = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))
    restored_model = small_model()
    restored_opt = restored_with(1e-2)
    restored_opt.build(restored_model.trainable_variables)
    status = tf.train.Checkpoint(model=restored_model, optimizer=restored_opt).restore(path)
    status.assert_existing_objects_matched()
    for got, want in zip(restored_opt.variables, opt.variables, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_fused_adam_runs_one_fused_kernel_per_variable():
    """The update is ResourceApplyAdam (one op per variable), not Keras' element-wise ops."""
    model = small_model()
    optimizer = FusedAdam(1e-2)
    optimizer.build(model.trainable_variables)
    grads = [tf.ones_like(v) for v in model.trainable_variables]

    @tf.function
    def update():
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    graph = update.get_concrete_function().graph
    op_types = [op.type for op in graph.get_operations()]
    for function in graph._functions.values():  # apply_gradients may nest functions
        op_types += [node.op for node in function.definition.node_def]
    assert op_types.count("ResourceApplyAdam") == len(model.trainable_variables)
