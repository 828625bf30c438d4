"""W4 baselines on the GPU machine: the W2 classifier's training step (784 -> 256 -> 10,
ReLU, softmax cross-entropy, SGD) at batch 4096 in float32, in PyTorch eager and in JAX
jit, plus PyTorch's sgemm at 4096^3 and a 16 M-element add for the same card.

Each figure is the median of 7 timed blocks of `steps` iterations, synchronised at both
ends of a block. Prints one line per figure.
"""
import statistics
import time

B, I, H, O = 4096, 784, 256, 10
LR = 0.1


def median_time(run, sync, steps, blocks=7):
    run(); sync()
    times = []
    for _ in range(blocks):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            run()
        sync()
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def torch_baselines():
    import torch
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    print("card:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
    g = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(B, I, generator=g) * 2 - 1).to(dev)
    labels = torch.tensor([(b * 7 + 1) % O for b in range(B)], device=dev)
    w1 = ((torch.rand(I, H, generator=g) * 2 - 1) / I ** 0.5).to(dev).requires_grad_()
    b1 = torch.zeros(H, device=dev, requires_grad=True)
    w2 = ((torch.rand(H, O, generator=g) * 2 - 1) / H ** 0.5).to(dev).requires_grad_()
    b2 = torch.zeros(O, device=dev, requires_grad=True)
    params = [w1, b1, w2, b2]

    def step():
        logits = torch.relu(x @ w1 + b1) @ w2 + b2
        loss = torch.nn.functional.cross_entropy(logits, labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, gr in zip(params, grads):
                p.sub_(LR * gr)

    t = median_time(step, torch.cuda.synchronize, 200)
    print(f"w4/train_step pytorch_eager: {t * 1e6:.1f} us")

    a = torch.rand(4096, 4096, device=dev) * 2 - 1
    bm = torch.rand(4096, 4096, device=dev) * 2 - 1
    t = median_time(lambda: a @ bm, torch.cuda.synchronize, 20)
    print(f"gpu_gemm/sgemm_4096 pytorch: {2 * 4096 ** 3 / t / 1e12:.1f} TFLOP/s ({t * 1e6:.0f} us)")
    u = torch.rand(16 << 20, device=dev)
    v = torch.rand(16 << 20, device=dev)
    t = median_time(lambda: u + v, torch.cuda.synchronize, 200)
    print(f"gpu_elementwise/add_16m pytorch: {3 * 4 * (16 << 20) / t / 1e12:.2f} TB/s ({t * 1e6:.1f} us)")


def jax_baseline():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_default_matmul_precision", "highest")
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.uniform(k1, (B, I), minval=-1, maxval=1)
    labels = jax.nn.one_hot(jnp.array([(b * 7 + 1) % O for b in range(B)]), O)
    params = (
        jax.random.uniform(k2, (I, H), minval=-1, maxval=1) / I ** 0.5,
        jnp.zeros(H),
        jax.random.uniform(k3, (H, O), minval=-1, maxval=1) / H ** 0.5,
        jnp.zeros(O),
    )

    def loss_fn(p):
        w1, b1, w2, b2 = p
        logits = jax.nn.relu(x @ w1 + b1) @ w2 + b2
        return -jnp.mean(jnp.sum(labels * jax.nn.log_softmax(logits), axis=1))

    @jax.jit
    def step(p):
        grads = jax.grad(loss_fn)(p)
        return tuple(w - LR * g for w, g in zip(p, grads))

    state = {"p": params}

    def run():
        state["p"] = step(state["p"])

    t = median_time(run, lambda: jax.block_until_ready(state["p"]), 200)
    print(f"w4/train_step jax_jit: {t * 1e6:.1f} us | jax", jax.__version__)


if __name__ == "__main__":
    torch_baselines()
    jax_baseline()
