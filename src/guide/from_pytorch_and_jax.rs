//! # Coming from PyTorch or JAX
//!
//! The same ideas under their fluxion names. Three differences run through the table:
//! shapes are types (`Matrix<f32, 2, 3>`, or `Tensor<f32, (Dyn, Const<784>), Heap>`
//! for a batch of any size), so a product of the wrong fixed sizes does not compile
//! (a `Dyn` size is checked when it runs: a panic naming both shapes, or a
//! `ShapeError` from the `try_` form); `*` only scales, and each product of two
//! tensors is named; and nothing broadcasts implicitly but `matmul` of a batch
//! `[B, M, K]` by one matrix `[K, N]` (a bias row is `add_rows`, new leading axes
//! `broadcast::<S>()`, a new axis anywhere `broadcast_axis(Axis::<k>)`).
//!
//! | PyTorch | JAX | fluxion |
//! | --- | --- | --- |
//! | `torch.tensor([[1., 2.]])` | `jnp.array(…)` | `Matrix::from_array([[1., 2.]])`, `Matrix::from_fn(\|[r, c]\| …)`, `Tensor::from_shape_fn`, `Tensor::from_shape_slice` (a `Result`: the slice's length is checked) |
//! | `torch.tensor(values)`, `torch.arange(n)` (length known when it runs) | `jnp.array(values)`, `jnp.arange(n)` | `Tensor::<f64, (Dyn,), Heap>::from_shape_slice((Dyn(values.len()),), &values)?`, `from_shape_fn((Dyn(n),), \|[i]\| i as f64)`: a rank-1 shape is a one-element tuple, its index a one-element array |
//! | `torch.zeros(2, 3)`, `torch.randn(…)`, `torch.eye(n)` | `jnp.zeros`, `random.normal`, `jnp.eye` | `Matrix::<f32, 2, 3>::zeros()`, `zeros_shaped(shape)`, `random_normal(mean, std, seed)`, `Matrix::identity()`, `identity_sized(Dyn(n))` |
//! | `a @ b` | `a @ b` | `a.matmul(&b)` (a batch by one matrix too; also `matmul_transposed`, `transposed_matmul`) |
//! | `a * b` | `a * b` | `a.hadamard(&b)`; `a * 2.0` scales; on the tape a tensor times a differentiated scalar is `x.scale_by(&s)` (`x * s` in static mode) |
//! | `x[i]`, `x[i, j]` (one element) | `x[i]` | `x[[i]]`, `x[[i, j]]` on tensors and in static mode; `x.at([i])`, `x.at([i, j])` on the tape (a `Var<T>`) |
//! | `torch.stack([a, b, c])` of scalars, a matrix built from them | `jnp.stack`, `jnp.array([[a, b], [c, d]])` | on the tape `Var::stack([&a, &b, &c])` (a vector; `.reshape()` gives a matrix of its elements by rows); in static mode `Vector::from_array([a, b, c])` and `Matrix::from_array([[a, b], [c, d]])` with differentiated scalars |
//! | `torch.dot`, `torch.vdot`, `torch.outer`, `torch.kron` | `jnp.dot`, `jnp.vdot`, `jnp.outer`, `jnp.kron` | `a.dot(&b)` (real), `a.inner(&b)` (aᴴb), `a.dotu(&b)`, `a.outer(&b)`, `a.kron(&b)` (matrices: `let k: Matrix<f64, 4, 4> = a.kron(&b)`) |
//! | `torch.linalg.cross(a, b)`, a rotation from a rotation vector | `jnp.cross(a, b)`, `Rotation.from_rotvec` | `a.cross(&b)` (`Vector<T, 3>` only: other lengths do not compile), `w.cross_matrix()` (\[w\]×), `w.cross_matrix().matrix_exp()` (the rotation by \|w\| about w); every mode |
//! | `torch.linalg.solve(A, b)` | `jnp.linalg.solve(a, b)` | `a.solve(&b)`: a square real or complex matrix, b a vector or a matrix of right-hand sides (`try_solve`: a `LinAlgError` for a singular matrix); every mode differentiates it |
//! | `torch.linalg.inv`, `torch.linalg.det`, `torch.linalg.slogdet`, `torch.linalg.cholesky` | `jnp.linalg.inv`, `det`, `slogdet`, `cholesky` | `a.inverse()`, `a.determinant()`, `a.log_abs_determinant()` (ln\|det A\|, real; the sign is `determinant().signum()` for real A, `det/\|det\|` for complex), `a.cholesky()` (of ½(A + Aᵀ), or ½(A + Aᴴ) with L·Lᴴ for complex A, as JAX's; `try_cholesky` for an indefinite matrix): real or complex matrices, every mode |
//! | `torch.linalg.matrix_exp(a)` | `jax.scipy.linalg.expm(a)` | `a.matrix_exp()`: real or complex square matrices (scaling and squaring of a Padé approximant, as JAX's; e^(−iHt) a unitary evolution), every mode; its Fréchet derivative in a direction is `ops::linalg::matrix_exp_push(&a, &e)` (`expm_frechet`) |
//! | `torch.linalg.qr(a)` (reduced), `torch.linalg.lstsq(A, b).solution` | `jnp.linalg.qr(a)`, `jnp.linalg.lstsq(a, b)[0]` | `let (q, r) = a.qr();` (R's diagonal real and non-negative, where LAPACK's signs or phases are arbitrary) and `a.least_squares(&b)` (x = R⁻¹Qᴴb; b a vector or a matrix of right-hand sides): real or complex matrices with at least as many rows as columns (fewer does not compile for static shapes), of full column rank for `least_squares` (`try_least_squares`: a `LinAlgError::RankDeficient` for a column dependent on the earlier ones to working precision, R's diagonal entry at most max(m, n)·ε times the largest, the default `rcond` of both `lstsq`s; where they return a minimum-norm solution of a rank-deficient or wide system, `a.pseudo_inverse().matmul(&b)` gives it); every mode |
//! | `torch.linalg.svdvals(a)`, `torch.linalg.matrix_norm(a, 2)`, `cond` | `jnp.linalg.svd(a, compute_uv=False)` | `a.singular_values()` (real, descending; real or complex matrices with at least as many rows as columns, `a.conj_transpose()` otherwise; one-sided Jacobi), its first entry the spectral norm, first over last the condition number, the sum the nuclear norm; every mode |
//! | `torch.linalg.svd(a, full_matrices=False)` | `jnp.linalg.svd(a, full_matrices=False)` | `let (u, sigma, v_h) = a.svd();` (thin only; real or complex, at least as many rows as columns; the third factor is Vᴴ, `Vh`; each column of V has its largest entry real and positive, where LAPACK's signs or phases are arbitrary; U completed to orthonormal columns where σ = 0); every mode, the vectors' derivatives where the σᵢ are distinct |
//! | `torch.linalg.pinv(a)`, `torch.linalg.lstsq` of a wide or rank-deficient system (gelsd) | `jnp.linalg.pinv(a)` | `a.pseudo_inverse()` (any shape, real or complex; σ ≤ max(m, n)·ε·σ₁ taken as 0, PyTorch's default `rtol`; no `rtol`/`atol` arguments) and `a.pseudo_inverse().matmul(&b)`, the least-norm least-squares solution; every mode, derivatives where the rank does not change |
//! | `torch.linalg.eigvalsh(a)`, `torch.linalg.eigh(a)` | `jnp.linalg.eigvalsh(a)`, `jnp.linalg.eigh(a)` | `a.symmetric_eigenvalues()` (of ½(A + Aᵀ), ascending), `a.symmetric_eigenvectors()` (the columns in that order, each column's entry of largest magnitude positive, where `eigh`'s signs are arbitrary) and `let (values, vectors) = a.symmetric_eigen();` (both from one run of the rotations): real matrices, every mode; for complex (Hermitian) ones `a.hermitian_eigenvalues()` and `let (values, vectors) = a.hermitian_eigen();` (λ real; each vector's largest entry made real and positive, where `eigh`'s phases are arbitrary) |
//! | `torch.linalg.solve_triangular(L, B, upper=False)`, `torch.diagonal(a)`, `torch.diag(v)` | `jax.scipy.linalg.solve_triangular(l, b, lower=True)`, `jnp.diag` | `l.solve_lower_triangular(&b)`, `u.solve_upper_triangular(&b)` (b a vector or a matrix; the other triangle not read; Lᵀ: `l.transpose().solve_upper_triangular(&z)`), `a.diagonal()`, `v.diagonal_matrix()`: a Gaussian's log-density is `z = l.solve_lower_triangular(&x)`, `z.dot(&z) * 0.5 + l.diagonal().ln().sum()` |
//! | `x.T`, `x.mH`, `x.permute(2, 0, 1)`, `x.reshape(…)`, `torch.cat`, `x[:, 2:5]` | `x.T`, `x.conj().T`, `jnp.transpose(x, (2, 0, 1))`, `reshape`, `concatenate`, slicing | `x.transpose()`, `x.conj_transpose()`, `x.permute(Axes::<2, 0, 1>)`, `x.reshape::<S>()` (a copy; `try_reshape(shape)` for `Dyn` sizes), `a.concat(Axis::<1>, &b)`, `narrow::<AXIS, START, LEN>()`; with offsets known at run time `narrow_range(Axis::<0>, 32..64)` (differentiated on the tape and in static mode), and `x[idx]` is `index_select(Axis::<0>, &idx)` (a `Dyn` axis) |
//! | `m[i]`, `m[:, j]` | `m[i]`, `m[:, j]` | `m.row(i)`, `m.column(j)`: a vector, differentiated in every mode (host tensors; `try_row`/`try_column` return the error for an index past the end) |
//! | `x + bias` (broadcast) | `x + bias` | `x.add_rows(&bias)`, `x.mul_rows(&gain)`, `x.broadcast::<S>()` |
//! | `torch.linalg.norm(x)` (2-norm, Frobenius for a matrix) | `jnp.linalg.norm(x)` | `x.norm()` (real or complex; every mode; at x = 0 the gradient and every tangent are 0, as PyTorch's, where JAX's are NaN) |
//! | `x.sum(1)`, `x.amax(1)`, `softmax(x, 1)` | `jnp.sum(x, 1)`, `jax.nn.softmax` | `x.sum_axis(Axis::<1>)`, `max_axis`, `mean_axis`, `softmax(Axis::<1>)`, `log_softmax`, `logsumexp` (`max_axis` and `max` give a tie's derivative to the first maximum, as `x.max(1)` does; `amax` and JAX split it) |
//! | `x.mean(1, keepdim=True)`, `y.unsqueeze(1).expand(…)` | `jnp.mean(x, 1, keepdims=True)`, `jnp.expand_dims` | `x.mean_axis(Axis::<1>).broadcast_axis(Axis::<1>)`, `y.broadcast_axis(Axis::<1>)` (the new axis's length from the result's type; `try_broadcast_axis_to(axis, shape)` for `Dyn` sizes) |
//! | `relu`, `F.softplus`, `F.silu`, `F.leaky_relu`, `clamp`, `torch.maximum`, `minimum` | `jax.nn.*`, `jnp.clip`, `jnp.maximum`, `minimum` | `x.relu()`, `softplus()`, `silu()`, `leaky_relu(a)`, `clamp(lo, hi)`, `maximum(&y)`, `minimum(&y)` |
//! | `torch.tan`, `atan`, `asin`, `acos`, `erf`, `erfc`, `floor`, `ceil`, `round`, `trunc`, `frac` | `jnp.tan`, …, `jax.scipy.special.erf`, `jnp.round` | `x.tan()`, `atan()`, `asin()`, `acos()`, `erf()`, `erfc()`, `floor()`, `ceil()`, `round()`, `trunc()`, `fract()` (`round` goes half away from zero, as Rust's: 2.5 → 3, where `torch.round` and `jnp.round` give 2; on a plain `f64` write `RealScalar::erf(x)`, as std has an unstable `f64::erf`) |
//! | `F.conv2d`, `F.max_pool2d(x, k, s, p)`, `F.avg_pool2d` | `lax.conv`, `reduce_window` | `conv2d`, `conv2d_padded`, `conv2d_strided`, `max_pool2d`, `max_pool2d_strided(Window::<K>, Stride::<S>, Padding::<P>)`, `avg_pool2d`, `avg_pool2d_strided` |
//! | `loss.backward(); x.grad` | `jax.grad`, `jax.value_and_grad` | `grad(f, &x)`, `value_and_grad(f, &x)`: `f` takes `Var`s |
//! | `requires_grad=False` | a closed-over array | `Var::constant(t)` |
//! | — | `has_aux=True` | `grad_with_aux`, `value_and_grad_with_aux`, `vjp_with_aux` |
//! | `torch.func.jvp`, `vjp`, `jacfwd`, `jacrev`, `hessian` | `jax.jvp`, `vjp`, `linearize`, `jacfwd`, `jacrev`, `hessian` | `jvp`, `vjp`, `linearize`, `jacfwd`, `jacrev`, `hessian`, `hvp` |
//! | `torch.autograd.functional.hessian` of a loss over `model.parameters()` | `jax.hessian(loss)(params)` | `coordinate_hessian(\|m\| loss(m.forward(&x)), &model)`: a dense matrix over every parameter, with each leaf's name and range ([`higher_order`](super::higher_order)) |
//! | `logits.argmax(1)`, accuracy | `jnp.argmax(logits, 1)` | `nn::loss::argmax(&logits)`, `accuracy(&logits, &classes)` (host or GPU) |
//! | `torch.compile` of a backward pass | `jax.jit(jax.grad(f))` | `#[differentiable]` on the function: its derivatives generated at compile time, no tape, no heap ([`static_mode`](super::static_mode)); faster than the tape where the tape's bookkeeping shows (small and fixed-size models, 2.4× on a small MLP), about as fast once products or convolutions dominate ([`performance`](super::performance)) |
//! | `x.detach()` | `lax.stop_gradient` | `stop_gradient(&x)` on the tape (a `&Var`), `stop_gradient(x)` on a value (static mode, duals) |
//! | `torch.no_grad()`, `model.eval()` | — | plain tensors record nothing; `inference(&model, \|m\| m.forward(&x))`, `evaluation(\|\| …)` |
//! | `torch.autograd.Function` | `jax.custom_vjp`, `custom_jvp` | `record_unary` and the rule traits ([`custom_rules`](super::custom_rules)); `#[differentiable(vjp = …, jvp = …)]` |
//! | `torch.autograd.gradcheck` | `jax.test_util.check_grads` | `autodiff::check::check_grad` (finite differences and the adjoint identity; `check_pullback` for static mode's `f::vjp`) |
//! | `nn.Module`, `nn.Sequential`, `nn.Linear`, `Conv2d`, `LayerNorm`, … | Flax, Equinox | `#[derive(Differentiable)]` structs, `Sequential((…))`, `Linear<T, I, O>`, `Conv2d`, `MaxPool2d`, `AvgPool2d`, `GlobalAvgPool2d`, `LayerNorm`, `GroupNorm`, `BatchNorm` (1-D and 2-D), `Embedding`, `Dropout`, `Residual`, `MultiHeadAttention` ([`models`](super::models)) |
//! | `F.scaled_dot_product_attention(q, k, v, is_causal=True)` | `jax.nn.dot_product_attention` | `q.attention(&k, &v, Heads::<H>, Tokens::<L>, Mask::Causal)` on rows `(N·L, D)`, the heads split from each row ([`models`](super::models)) |
//! | `mha(x, x, x, key_padding_mask=…)`, `mha(x, memory, memory)` | `MultiHeadDotProductAttention(mask=…)` | `mha.forward_padded(&x, &lengths)`, `mha.forward_to(&x, &memory, Tokens::<LK>, lengths)`; primitives `q.padded_attention(…)`, `q.cross_attention(…)` (lengths: real tokens per sequence) |
//! | `optim.SGD`, `Adam`, `AdamW` | Optax | `Sgd::new(SgdConfig { … })`, `Adam::new(AdamConfig { … })`, `Adam::new(AdamConfig::adamw())`, `optimizer.step(&mut model, &gradient)`; the usual no-decay group for biases and norms is `decay_vectors: false` |
//! | `clip_grad_norm_`, `lr_scheduler` | `optax.clip_by_global_norm`, schedules | `clip_grad_norm`, `StepDecay`, `CosineDecay` |
//! | `F.cross_entropy`, `F.binary_cross_entropy_with_logits`, `F.mse_loss` | `optax.softmax_cross_entropy`, … | `cross_entropy(&logits, &classes, Reduction::Mean)`, `binary_cross_entropy_with_logits`, `mse`; `reduction='none'` is `loss::unreduced` |
//! | `torch.save(model.state_dict(), …)`, `load_state_dict` | Orbax | `nn::io::save(&model, path)`, `nn::io::load(&mut model, path)` (safetensors, feature `safetensors`), `save_checkpoint`, `load_checkpoint` |
//! | `DataLoader` | — | `data::Dataset::new(features, labels)?.batches(size, Order::Shuffled(seed))` for rows; images: `x.index_select(Axis::<0>, &shuffled[i..i + 32])` |
//! | `copy.deepcopy(model)` | — | `model.clone()` (buffers copied too) |
//! | `x.to("cuda")`, `x.cpu()`, `model.cuda()`, `model.cpu()` | `jax.device_put` | `x.to_device()`, `x.to_host::<Heap>()`, `model.to_device()`, `model.to_host()` (feature `cuda`, [`gpu`](super::gpu)) |
//! | `allow_tf32 = True` | `jax.default_matmul_precision` | `Device::get()?.set_matmul_precision(MatmulPrecision::Tf32)` |
//!
//! Pooling layers read PyTorch's arguments as type parameters, padding before stride
//! as for `Conv2d`: `nn.MaxPool2d(2)` is `MaxPool2d<2, HO, WO>`, AlexNet's
//! `nn.MaxPool2d(3, stride=2)` is `MaxPool2d<3, HO, WO, 0, 2>` and a ResNet stem's
//! `nn.MaxPool2d(3, stride=2, padding=1)` is `MaxPool2d<3, HO, WO, 1, 2>`; `AvgPool2d`
//! divides by K² as PyTorch's default `count_include_pad=True` does. Not offered:
//! `ceil_mode=True`, `count_include_pad=False`, rectangular windows and dilation (a
//! port that needs one fails to compile on its output size rather than differ).
//!
//! `nn.GroupNorm(32, 256, eps=1e-6)` (a diffusion model's) is
//! `GroupNorm::<f32, 256, 32> { epsilon: 1e-6, ..GroupNorm::default() }`: channels,
//! then groups; `affine=False` is `x.normalize_groups(Groups::<32>, 1e-6)`. A scale
//! and shift per example (AdaGN, `use_scale_shift_norm`) is not offered:
//! `mul_channels` takes one vector of C.
//!
//! `nn.MultiheadAttention(64, 4, batch_first=True)` called as `mha(x, x, x,
//! attn_mask=nn.Transformer.generate_square_subsequent_mask(16), is_causal=True)` on
//! `(N, 16, 64)` is `MultiHeadAttention::<f32, 64, 4, 16>::new(Mask::Causal, seed)`
//! on the rows `x.reshape(N·16, 64)`: width, heads, then the sequence length, whose
//! rows a sequence's tokens are (without the mask, `Mask::Full`). Its four maps are `query`,
//! `key`, `value` and `output` (PyTorch packs the first three in `in_proj_weight`:
//! rows 0..D, D..2D, 2D..3D).
//!
//! A complex gradient follows PyTorch: ∂L/∂x + i·∂L/∂y
//! ([`complex_numbers`](super::complex_numbers)); JAX returns its conjugate.
//!
//! Not here (yet): `vmap` (a batch is a dimension of the tensor, and `jacfwd` pushes
//! all its tangents in one pass), implicit broadcasting beyond a batch `matmul` (on
//! purpose), tensors whose rank is only known at run time, bf16 tensors (bf16 is a GPU
//! product precision), more than one GPU.
//!
//! ## One function, JAX style
//!
//! ```python
//! def loss(w, x, y):
//!     e = jnp.tanh(x @ w) - y
//!     return e @ e / 4
//! g = jax.grad(loss)(w, x, y)
//! ```
//!
//! becomes one ordinary function, differentiated at compile time, or the same
//! computation on the tape:
//!
//! ```
//! use fluxion::prelude::*;
//!
//! type W = Vector<f64, 3>;
//! type X = Matrix<f64, 4, 3>;
//! type Y = Vector<f64, 4>;
//!
//! #[differentiable(wrt(w))]
//! fn loss(w: W, x: X, y: Y) -> f64 {
//!     let e = x.matmul(&w).tanh() - y;
//!     e.dot(&e) / 4.0
//! }
//!
//! let w: W = Vector::from_array([0.1, -0.2, 0.3]);
//! let x: X = Matrix::from_fn(|[r, c]| (r as f64 - c as f64) * 0.5);
//! let y: Y = Vector::from_array([0.0, 0.5, -0.5, 1.0]);
//! let compiled = loss::grad(w, x, y);
//! let taped = grad(
//!     |w: Var<W>| {
//!         let e = &Var::constant(x).matmul(&w).tanh() - &Var::constant(y);
//!         e.dot(&e) / 4.0
//!     },
//!     &w,
//! );
//! assert!(compiled.iter().zip(taped.iter()).all(|(a, b)| (a - b).abs() < 1e-15));
//! ```
