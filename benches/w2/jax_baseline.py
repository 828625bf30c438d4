"""Workload W2 in JAX (jit), for the comparison in BENCHMARKS.md: one SGD step
(eta = 0.01) of an MLP 784->256->10 with ReLU, batch 128, float32, mean softmax
cross-entropy from the logits, weights [out, in] as PyTorch stores them.

Needs `pip install "jax[cpu]"` (not a dependency of the crate; CI does not run it).
Prints the median time per step over 9 rounds of 200 steps, after a warm-up.
One thread:  XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 0 python3 jax_baseline.py
Two threads: taskset -c 0,1 python3 jax_baseline.py
"""

import statistics
import time

import jax
import jax.numpy as jnp

BATCH, INPUTS, HIDDEN, CLASSES = 128, 784, 256, 10


def init(key):
    """PyTorch's nn.Linear initialisation: uniform in +-1/sqrt(fan_in)."""
    keys = jax.random.split(key, 4)
    bound1, bound2 = 1.0 / INPUTS**0.5, 1.0 / HIDDEN**0.5
    uniform = lambda k, shape, bound: jax.random.uniform(k, shape, jnp.float32, -bound, bound)
    return {
        "w1": uniform(keys[0], (HIDDEN, INPUTS), bound1),
        "b1": uniform(keys[1], (HIDDEN,), bound1),
        "w2": uniform(keys[2], (CLASSES, HIDDEN), bound2),
        "b2": uniform(keys[3], (CLASSES,), bound2),
    }


def loss(params, x, labels):
    hidden = jax.nn.relu(x @ params["w1"].T + params["b1"])
    logits = hidden @ params["w2"].T + params["b2"]
    log_p = jax.nn.log_softmax(logits, axis=1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=1))


@jax.jit
def step(params, x, labels):
    value, grads = jax.value_and_grad(loss)(params, x, labels)
    return value, jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)


def main():
    params = init(jax.random.PRNGKey(1))
    x = jax.random.uniform(jax.random.PRNGKey(2), (BATCH, INPUTS), jnp.float32)
    labels = jax.random.randint(jax.random.PRNGKey(3), (BATCH,), 0, CLASSES)
    for _ in range(50):
        value, params = step(params, x, labels)
    value.block_until_ready()
    rounds = []
    for _ in range(9):
        start = time.perf_counter()
        for _ in range(200):
            value, params = step(params, x, labels)
        value.block_until_ready()
        rounds.append((time.perf_counter() - start) / 200)
    print(f"jax {jax.__version__} jit W2 step: median {statistics.median(rounds) * 1e6:.1f} us "
          f"(min {min(rounds) * 1e6:.1f}, max {max(rounds) * 1e6:.1f})")


if __name__ == "__main__":
    main()
