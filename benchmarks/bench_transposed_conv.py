"""Is oneDNN's transposed convolution the fastest way to compute the VAE decoder's layers
(Sootla 2018, Table 3.1: 4x4, stride 2, 'same') on this CPU? Forward + backward (input and
kernel gradients) of one layer on a batch of 64, three ways:

  deconv:    `tf.nn.conv2d_transpose` (what `keras.layers.Conv2DTranspose` runs);
  phase_taps: one matmul [B*H*W, C_in] x [C_in, 16*C_out] for all 16 kernel taps, then per
             output phase the sum of four shifted tap slices, interleaved by `depth_to_space`;
  im2col:    the 2x2 input patches of every output phase side by side, [B*(H+1)*(W+1), 4*C_in]
             x [4*C_in, 4*C_out] (one matmul for the four phases), then four window slices.

All three compute the same function (checked: max abs difference printed). Median of 5 rounds
of 30 calls, wall ms per call, in one process. A negative result is kept so that nobody tries
it again: see docs/benchmarks.md.

Usage: python benchmarks/bench_transposed_conv.py
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

LAYERS = ((64, 64, 4), (64, 32, 8), (32, 1, 16))  # (C_in, C_out, input size): Table 3.1
# For output phase a: (kernel row, start of the input window in the tap tensor padded by one).
PHASE_TAPS = (((1, 1), (3, 0)), ((0, 2), (2, 1)))
IM2COL_ROWS = ((3, 1), (2, 0))  # kernel row of patch row dy, for output phase a


def deconv(x, kernel):
    s = tf.shape(x)
    return tf.nn.conv2d_transpose(x, kernel, [s[0], 2 * s[1], 2 * s[2], kernel.shape[2]], 2,
                                  "SAME")


def phase_taps(x, kernel):
    s = tf.shape(x)
    h, w, c_in, c_out = s[1], s[2], kernel.shape[3], kernel.shape[2]
    weights = tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]), [c_in, 16 * c_out])
    taps = tf.reshape(tf.matmul(tf.reshape(x, [-1, c_in]), weights), [s[0], h, w, 4, 4, c_out])
    taps = tf.pad(taps, [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0], [0, 0]])
    phases = [tf.add_n([taps[:, r0:r0 + h, c0:c0 + w, ky, kx, :]
                        for ky, r0 in rows for kx, c0 in cols])
              for rows in PHASE_TAPS for cols in PHASE_TAPS]
    return tf.nn.depth_to_space(tf.concat(phases, -1), 2)


def im2col(x, kernel):
    s = tf.shape(x)
    h, w, c_in, c_out = s[1], s[2], kernel.shape[3], kernel.shape[2]
    xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    patches = tf.concat([xp[:, :-1, :-1], xp[:, :-1, 1:], xp[:, 1:, :-1], xp[:, 1:, 1:]], -1)
    blocks = [tf.concat([tf.transpose(kernel[IM2COL_ROWS[a][dy], IM2COL_ROWS[b][dx]])
                         for dy in range(2) for dx in range(2)], 0)
              for a in range(2) for b in range(2)]
    out = tf.matmul(tf.reshape(patches, [-1, 4 * c_in]), tf.concat(blocks, 1))
    out = tf.reshape(out, [s[0], h + 1, w + 1, 4 * c_out])
    phases = [out[:, a:a + h, b:b + w, (2 * a + b) * c_out:(2 * a + b + 1) * c_out]
              for a in range(2) for b in range(2)]
    return tf.nn.depth_to_space(tf.concat(phases, -1), 2)


def timed(fn, x, kernel, upstream, rounds=5, calls=30) -> float:
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(fn(x, kernel) * upstream)
        return tape.gradient(y, [x, kernel])

    step()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            grads = step()
        grads[0].numpy()
        times.append(1e3 * (time.perf_counter() - start) / calls)
    return sorted(times)[rounds // 2]


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"load average before: {tuple(round(v, 2) for v in os.getloadavg())}")
    print("| layer (C_in -> C_out, input size) | deconv ms | phase_taps ms | im2col ms | "
          "max abs diff |")
    print("|---|---:|---:|---:|---:|")
    for c_in, c_out, size in LAYERS:
        x = tf.constant(rng.normal(size=(64, size, size, c_in)).astype(np.float32))
        kernel = tf.Variable(rng.normal(size=(4, 4, c_out, c_in)).astype(np.float32))
        upstream = tf.constant(rng.normal(size=(64, 2 * size, 2 * size, c_out)), tf.float32)
        diff = max(float(tf.reduce_max(tf.abs(f(x, kernel) - deconv(x, kernel))))
                   for f in (phase_taps, im2col))
        ms = [timed(f, x, kernel, upstream) for f in (deconv, phase_taps, im2col)]
        print(f"| {c_in} -> {c_out}, {size}x{size} | {ms[0]:.2f} | {ms[1]:.2f} | {ms[2]:.2f} | "
              f"{diff:.1e} |")


if __name__ == "__main__":
    main()
