//! In-memory data sets of labelled examples: a seeded train/test split stratified by
//! label, and mini-batches in order or in a seeded shuffle.
//!
//! A [`Dataset<T, F>`] holds n examples as the rows of a heap matrix `[n, F]` and one
//! class index per row. Everything random takes a `u64` seed and gives the same result
//! for the same seed:
//!
//! - [`Dataset::train_test_split`]: each class is split in the same proportion.
//! - [`Dataset::batches`]: batches `[Dyn, F]`; every example appears exactly once per
//!   pass, and the last batch holds what is left (it may be smaller).
//! - [`Dataset::batches_static`] (heap) and [`Dataset::batches_inline`] (inline):
//!   batches `[B, F]` of static size; an incomplete last batch is dropped.
//!
//! For a different shuffle in every epoch, pass a different seed, e.g.
//! `Order::Shuffled(epoch)`.
//!
//! ```
//! use fluxion::data::{Dataset, Order};
//! use fluxion::prelude::*;
//!
//! // Ten examples of two features: x = (i, −i), labelled by parity.
//! let features =
//!     Tensor::from_shape_fn((Dyn(10), Const::<2>), |[i, j]| if j == 0 { i as f32 } else { -(i as f32) });
//! let data = Dataset::new(features, (0..10).map(|i| i % 2).collect())?;
//!
//! let (train, test) = data.train_test_split(0.2, 42);
//! assert_eq!((train.len(), test.len()), (8, 2));
//! assert_eq!(test.labels().iter().filter(|&&label| label == 0).count(), 1); // one of each class
//!
//! let sizes: Vec<usize> = train.batches(3, Order::Shuffled(0)).map(|(x, y)| {
//!     assert_eq!(x.shape().0, Dyn(y.len()));
//!     y.len()
//! }).collect();
//! assert_eq!(sizes, [3, 3, 2]); // the last batch is partial
//!
//! // Static batches of 3: the incomplete last one is dropped.
//! for (x, y) in train.batches_static::<3>(Order::Sequential) {
//!     let _: Tensor<f32, (Const<3>, Const<2>), Heap> = x;
//!     let _: [usize; 3] = y;
//! }
//! assert_eq!(train.batches_static::<3>(Order::Sequential).len(), 2);
//! # Ok::<(), ShapeError>(())
//! ```

use std::vec::Vec;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::ShapeError;
use crate::shape::{Const, Dim, Dims, Dyn};
use crate::tensor::{Heap, Inline, Storage, Tensor};

/// Labelled examples: features `[n, F]` (one example per row) and one class index per
/// example.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T: Copy + 'static, const F: usize> {
    features: Tensor<T, (Dyn, Const<F>), Heap>,
    labels: Vec<usize>,
}

/// The order in which [`Dataset::batches`] visits the examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Row 0, 1, 2, … of the data set.
    Sequential,
    /// A permutation drawn from a generator seeded by the given seed.
    Shuffled(u64),
}

impl<T: Copy + 'static, const F: usize> Dataset<T, F> {
    /// A data set of the rows of `features`, example i labelled `labels[i]`.
    ///
    /// # Errors
    /// When `labels` does not hold one label per row; the error names both shapes.
    pub fn new(features: Tensor<T, (Dyn, Const<F>), Heap>, labels: Vec<usize>) -> Result<Self, ShapeError> {
        if features.shape().0.size() == labels.len() {
            Ok(Dataset { features, labels })
        } else {
            Err(ShapeError::new(
                "Dataset::new",
                features.dims(),
                Dims::new(&[labels.len()]),
                "one label per row of the features",
            ))
        }
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features, one example per row.
    pub fn features(&self) -> &Tensor<T, (Dyn, Const<F>), Heap> {
        &self.features
    }

    /// The class index of each example.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// One more than the largest label (0 when empty; `usize::MAX` for a label of
    /// `usize::MAX`).
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&label| label.saturating_add(1))
    }

    /// The features and the labels.
    pub fn into_parts(self) -> (Tensor<T, (Dyn, Const<F>), Heap>, Vec<usize>) {
        (self.features, self.labels)
    }

    /// The examples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// When an index is not below [`len`](Self::len).
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> Self {
        if let Some(&bad) = indices.iter().find(|&&index| index >= self.len()) {
            panic!("Dataset::subset: index {bad} is out of range for {} examples", self.len());
        }
        Dataset {
            features: self.gather(Dyn(indices.len()), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// [`train_test_indices`](Self::train_test_indices) as two data sets `(train, test)`.
    ///
    /// # Panics
    /// When `test_fraction` is not in [0, 1].
    #[track_caller]
    pub fn train_test_split(&self, test_fraction: f64, seed: u64) -> (Self, Self) {
        let (train, test) = self.train_test_indices(test_fraction, seed);
        (self.subset(&train), self.subset(&test))
    }

    /// A split of the example indices into `(train, test)`, stratified by label and
    /// seeded: together they hold every index once, each list in increasing order.
    ///
    /// The test part has round(n·f) examples (halves away from zero) for the fraction f,
    /// and class c, with n_c examples, gives it ⌊n_c·f⌋ or ⌈n_c·f⌉ of them: the
    /// floors, then one more for each class with the largest remainders n_c·f − ⌊n_c·f⌋
    /// (ties to the lower class) until the total is reached. So every class keeps its
    /// proportion to within one example, whatever the seed; which examples of a class
    /// go to the test part is drawn from a generator seeded by `seed`.
    ///
    /// ```
    /// use fluxion::data::Dataset;
    /// use fluxion::prelude::*;
    ///
    /// let labels = vec![0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
    /// let data = Dataset::new(Tensor::<f64, _, Heap>::zeros_shaped((Dyn(10), Const::<1>)), labels)?;
    /// let (train, test) = data.train_test_indices(0.5, 7);
    /// assert_eq!((train.len(), test.len()), (5, 5));
    /// // Class 0 gives 2 of its 4, class 1 gives 3 of its 6.
    /// assert_eq!(test.iter().filter(|&&i| i < 4).count(), 2);
    /// assert_eq!((train.clone(), test.clone()), data.train_test_indices(0.5, 7));
    /// # Ok::<(), ShapeError>(())
    /// ```
    ///
    /// # Panics
    /// When `test_fraction` is not in [0, 1].
    #[track_caller]
    pub fn train_test_indices(&self, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
        assert!(
            (0.0..=1.0).contains(&test_fraction),
            "train_test_split: the test fraction {test_fraction} must be in [0, 1]"
        );
        // The examples of each label present, in increasing label order.
        let mut by_label = std::collections::BTreeMap::<usize, Vec<usize>>::new();
        for (index, &label) in self.labels.iter().enumerate() {
            by_label.entry(label).or_default().push(index);
        }
        let mut classes: Vec<Vec<usize>> = by_label.into_values().collect();
        let shares: Vec<f64> = classes.iter().map(|members| members.len() as f64 * test_fraction).collect();
        let mut test_counts: Vec<usize> = shares.iter().map(|share| share.floor() as usize).collect();
        let target = (self.len() as f64 * test_fraction).round() as usize;
        let missing = target.saturating_sub(test_counts.iter().sum());
        let mut by_remainder: Vec<usize> = (0..classes.len()).collect();
        // A stable sort keeps the lower class first among equal remainders.
        by_remainder
            .sort_by(|&a, &b| (shares[b] - shares[b].floor()).total_cmp(&(shares[a] - shares[a].floor())));
        for &class in by_remainder.iter().take(missing) {
            test_counts[class] += 1;
        }

        let mut rng = StdRng::seed_from_u64(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (members, count) in classes.iter_mut().zip(test_counts) {
            members.shuffle(&mut rng);
            let (to_test, to_train) = members.split_at(count.min(members.len()));
            test.extend_from_slice(to_test);
            train.extend_from_slice(to_train);
        }
        train.sort_unstable();
        test.sort_unstable();
        (train, test)
    }

    /// Mini-batches `(features [Dyn, F], labels)` of `batch_size` examples, visited in
    /// `order`: every example appears in exactly one batch, and the last batch holds
    /// the remaining `len() % batch_size` examples when that is not zero.
    ///
    /// # Panics
    /// When `batch_size` is zero.
    #[track_caller]
    pub fn batches(&self, batch_size: usize, order: Order) -> Batches<'_, T, F> {
        assert!(batch_size > 0, "Dataset::batches: the batch size must be positive");
        Batches { data: self, order: self.indices(order), batch_size, next: 0 }
    }

    /// Mini-batches `(features [B, F], labels [usize; B])` on the heap, visited in
    /// `order`: ⌊n/B⌋ full batches; the last n mod B examples of the order are
    /// dropped (use [`batches`](Self::batches) to keep them).
    ///
    /// A batch size of zero does not compile:
    ///
    /// ```compile_fail
    /// # use fluxion::data::{Dataset, Order};
    /// # use fluxion::prelude::*;
    /// # let data: Dataset<f32, 2> = Dataset::new(Tensor::zeros_shaped((Dyn(4), Const)), vec![0; 4]).unwrap();
    /// data.batches_static::<0>(Order::Sequential).count();
    /// ```
    pub fn batches_static<const B: usize>(&self, order: Order) -> StaticBatches<'_, T, F, B, Heap> {
        self.static_batches(order)
    }

    /// [`batches_static`](Self::batches_static) with inline batches (no heap
    /// allocation per batch), for fixed-size nets of `Inline` tensors.
    pub fn batches_inline<const B: usize>(&self, order: Order) -> StaticBatches<'_, T, F, B, Inline> {
        self.static_batches(order)
    }

    fn static_batches<const B: usize, K>(&self, order: Order) -> StaticBatches<'_, T, F, B, K> {
        const { assert!(B > 0, "static batches: the batch size B must be positive") };
        StaticBatches { data: self, order: self.indices(order), next: 0, storage: core::marker::PhantomData }
    }

    /// The example indices in `order`: what the batches visit, so that batch k of
    /// [`batches`](Self::batches)`(b, order)` holds the examples at
    /// `indices[k·b..(k + 1)·b]` (to pick per-example weights or other data of the
    /// same examples).
    pub fn indices(&self, order: Order) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..self.len()).collect();
        if let Order::Shuffled(seed) = order {
            indices.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        indices
    }

    /// The feature rows at `indices` (all in range), stacked into `rows` rows.
    fn gather<B: Dim, K: Storage<T, (B, Const<F>)>>(
        &self,
        rows: B,
        indices: &[usize],
    ) -> Tensor<T, (B, Const<F>), K> {
        debug_assert_eq!(rows.size(), indices.len());
        let x = self.features.as_slice();
        Tensor::from_runs((rows, Const), indices.iter().map(|&row| &x[row * F..][..F]))
    }
}

/// The iterator of [`Dataset::batches`].
#[derive(Clone, Debug)]
pub struct Batches<'a, T: Copy + 'static, const F: usize> {
    data: &'a Dataset<T, F>,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl<T: Copy + 'static, const F: usize> Iterator for Batches<'_, T, F> {
    type Item = (Tensor<T, (Dyn, Const<F>), Heap>, Vec<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let remaining = &self.order[self.next..];
        if remaining.is_empty() {
            return None;
        }
        let indices = &remaining[..self.batch_size.min(remaining.len())];
        self.next += indices.len();
        let labels = indices.iter().map(|&i| self.data.labels[i]).collect();
        Some((self.data.gather(Dyn(indices.len()), indices), labels))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let count = (self.order.len() - self.next).div_ceil(self.batch_size);
        (count, Some(count))
    }
}

impl<T: Copy + 'static, const F: usize> ExactSizeIterator for Batches<'_, T, F> {}

impl<T: Copy + 'static, const F: usize> core::iter::FusedIterator for Batches<'_, T, F> {}

/// The iterator of [`Dataset::batches_static`] and [`Dataset::batches_inline`]:
/// batches of storage `K`.
#[derive(Clone, Debug)]
pub struct StaticBatches<'a, T: Copy + 'static, const F: usize, const B: usize, K> {
    data: &'a Dataset<T, F>,
    order: Vec<usize>,
    next: usize,
    storage: core::marker::PhantomData<K>,
}

impl<T: Copy + 'static, const F: usize, const B: usize, K: Storage<T, (Const<B>, Const<F>)>> Iterator
    for StaticBatches<'_, T, F, B, K>
{
    type Item = (Tensor<T, (Const<B>, Const<F>), K>, [usize; B]);

    fn next(&mut self) -> Option<Self::Item> {
        let indices = self.order.get(self.next..self.next + B)?;
        self.next += B;
        let labels = core::array::from_fn(|k| self.data.labels[indices[k]]);
        Some((self.data.gather(Const, indices), labels))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let count = (self.order.len() - self.next) / B;
        (count, Some(count))
    }
}

impl<T: Copy + 'static, const F: usize, const B: usize, K: Storage<T, (Const<B>, Const<F>)>> ExactSizeIterator
    for StaticBatches<'_, T, F, B, K>
{
}

impl<T: Copy + 'static, const F: usize, const B: usize, K: Storage<T, (Const<B>, Const<F>)>>
    core::iter::FusedIterator for StaticBatches<'_, T, F, B, K>
{
}
