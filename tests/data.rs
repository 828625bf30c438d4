//! Data sets: construction errors, subsets, the stratified train/test split
//! (partition, class proportions, seeding) and mini-batches (each example once per
//! pass, batch sizes, the partial or dropped last batch, seeding).

use fluxion::data::{Dataset, Order};
use fluxion::prelude::*;
use proptest::prelude::*;

/// `n` examples whose features are (i, 100 + i, −i), so that a row names its example,
/// labelled by `label(i)`.
fn numbered(n: usize, label: impl Fn(usize) -> usize) -> Dataset<f64, 3> {
    let features = Tensor::from_shape_fn((Dyn(n), Const::<3>), |[i, j]| match j {
        0 => i as f64,
        1 => 100.0 + i as f64,
        _ => -(i as f64),
    });
    Dataset::new(features, (0..n).map(label).collect()).unwrap()
}

/// The example each row of a batch holds, checking that the row is intact and that
/// its label is the example's.
fn examples<K: Storage<f64, (B, Const<3>)>, B: Dim>(
    data: &Dataset<f64, 3>,
    features: &Tensor<f64, (B, Const<3>), K>,
    labels: &[usize],
) -> Vec<usize> {
    assert_eq!(features.shape().0.size(), labels.len());
    features
        .as_slice()
        .chunks(3)
        .zip(labels)
        .map(|(row, &label)| {
            let i = row[0] as usize;
            assert_eq!(row, [i as f64, 100.0 + i as f64, -(i as f64)]);
            assert_eq!(label, data.labels()[i]);
            i
        })
        .collect()
}

fn sorted(mut indices: Vec<usize>) -> Vec<usize> {
    indices.sort_unstable();
    indices
}

#[test]
fn a_label_count_that_differs_from_the_row_count_is_an_error_naming_both() {
    let features: Tensor<f32, (Dyn, Const<3>), Heap> = Tensor::zeros_shaped((Dyn(5), Const));
    let error = Dataset::new(features, vec![0; 4]).unwrap_err();
    assert_eq!(error.operation(), "Dataset::new");
    assert_eq!((error.lhs().as_slice(), error.rhs().as_slice()), (&[5, 3][..], &[4][..]));
    let message = error.to_string();
    assert!(message.contains("[5, 3]") && message.contains("[4]"), "{message}");
}

#[test]
fn accessors_report_the_examples() {
    let data = numbered(7, |i| [2, 0, 5][i % 3]);
    assert_eq!((data.len(), data.is_empty(), data.num_classes()), (7, false, 6));
    assert_eq!(data.features()[[4, 1]], 104.0);
    assert_eq!(data.labels(), [2, 0, 5, 2, 0, 5, 2]);
    let (features, labels) = data.clone().into_parts();
    assert_eq!((&features, labels.as_slice()), (data.features(), data.labels()));

    let empty = numbered(0, |_| 0);
    assert_eq!((empty.len(), empty.is_empty(), empty.num_classes()), (0, true, 0));
    assert_eq!(empty.batches(4, Order::Shuffled(1)).count(), 0);
    assert_eq!(empty.batches_static::<4>(Order::Sequential).count(), 0);
    let (train, test) = empty.train_test_split(0.3, 1);
    assert!(train.is_empty() && test.is_empty());
}

#[test]
fn a_subset_takes_the_rows_and_labels_in_the_order_given() {
    let data = numbered(6, |i| i / 2);
    let subset = data.subset(&[4, 1, 4]);
    assert_eq!(subset.len(), 3);
    assert_eq!(subset.features().shape(), (Dyn(3), Const::<3>));
    assert_eq!(examples(&data, subset.features(), subset.labels()), [4, 1, 4]);
    assert_eq!(subset.labels(), [2, 0, 2]);
}

#[test]
#[should_panic(expected = "Dataset::subset: index 6 is out of range for 6 examples")]
fn a_subset_index_out_of_range_panics() {
    numbered(6, |_| 0).subset(&[0, 6]);
}

#[test]
fn sequential_batches_visit_the_rows_in_order_with_a_partial_last_batch() {
    let data = numbered(10, |i| i % 3);
    let batches: Vec<_> = data.batches(4, Order::Sequential).collect();
    let sizes: Vec<usize> = batches.iter().map(|(x, _)| x.shape().0.size()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    let visited: Vec<usize> = batches.iter().flat_map(|(x, y)| examples(&data, x, y)).collect();
    assert_eq!(visited, (0..10).collect::<Vec<_>>());
    // A batch size that divides n gives no partial batch; one above n gives one batch.
    assert_eq!(data.batches(5, Order::Sequential).map(|(_, y)| y.len()).collect::<Vec<_>>(), [5, 5]);
    assert_eq!(data.batches(11, Order::Sequential).map(|(_, y)| y.len()).collect::<Vec<_>>(), [10]);
}

#[test]
fn a_shuffled_pass_visits_every_example_exactly_once() {
    let data = numbered(103, |i| i % 4);
    for seed in 0..5 {
        let mut batches = data.batches(16, Order::Shuffled(seed));
        assert_eq!(batches.len(), 7);
        let mut visited = Vec::new();
        let mut sizes = Vec::new();
        for (x, y) in batches.by_ref() {
            sizes.push(y.len());
            visited.extend(examples(&data, &x, &y));
        }
        assert_eq!(sizes, [16, 16, 16, 16, 16, 16, 7]);
        assert_ne!(visited, (0..103).collect::<Vec<_>>(), "seed {seed} left the order unchanged");
        assert_eq!(sorted(visited), (0..103).collect::<Vec<_>>());
        assert_eq!((batches.len(), batches.next().is_none()), (0, true));
    }
}

#[test]
fn the_shuffle_is_fixed_by_the_seed() {
    let data = numbered(50, |i| i % 5);
    let pass = |seed| -> Vec<usize> {
        data.batches(8, Order::Shuffled(seed)).flat_map(|(x, y)| examples(&data, &x, &y)).collect()
    };
    assert_eq!(pass(3), pass(3));
    assert_ne!(pass(3), pass(4));
    // The static batches follow the same permutation, less its tail.
    let static_pass: Vec<usize> =
        data.batches_static::<8>(Order::Shuffled(3)).flat_map(|(x, y)| examples(&data, &x, &y)).collect();
    assert_eq!(static_pass, pass(3)[..48]);
}

#[test]
fn static_batches_drop_the_incomplete_last_batch() {
    let data = numbered(10, |i| i % 2);
    let batches = data.batches_static::<4>(Order::Sequential);
    assert_eq!(batches.len(), 2);
    let visited: Vec<usize> = batches
        .map(|(x, y): (Tensor<f64, (Const<4>, Const<3>), Heap>, [usize; 4])| examples(&data, &x, &y))
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(visited, (0..8).collect::<Vec<_>>());

    // Shuffled: 2 batches of 4, 8 distinct examples, the 2 dropped ones differ by seed.
    let dropped = |seed| -> Vec<usize> {
        let kept: Vec<usize> = data
            .batches_static::<4>(Order::Shuffled(seed))
            .flat_map(|(x, y)| examples(&data, &x, &y))
            .collect();
        assert_eq!(kept.len(), 8);
        (0..10).filter(|i| !kept.contains(i)).collect()
    };
    assert_eq!(dropped(1).len(), 2);
    assert!((0..20).any(|seed| dropped(seed) != dropped(1)));

    // Fewer examples than one batch: no batch at all.
    assert_eq!(data.batches_static::<11>(Order::Sequential).count(), 0);
}

#[test]
fn inline_batches_hold_the_same_examples_as_heap_batches() {
    let data = numbered(9, |i| i % 3);
    let heap: Vec<_> = data.batches_static::<2>(Order::Shuffled(8)).collect();
    let inline: Vec<(Tensor<f64, (Const<2>, Const<3>), Inline>, [usize; 2])> =
        data.batches_inline::<2>(Order::Shuffled(8)).collect();
    assert_eq!(inline.len(), 4);
    for ((xh, yh), (xi, yi)) in heap.iter().zip(&inline) {
        assert_eq!((xh.as_slice(), yh), (xi.as_slice(), yi));
    }
}

#[test]
#[should_panic(expected = "Dataset::batches: the batch size must be positive")]
fn a_zero_batch_size_panics() {
    numbered(3, |_| 0).batches(0, Order::Sequential);
}

#[test]
fn the_split_keeps_each_class_proportion_and_is_a_partition() {
    // Unbalanced classes of 40, 25, 3 and 1 examples, interleaved.
    let counts = [40, 25, 3, 1];
    let labels: Vec<usize> = (0..counts.len()).flat_map(|c| std::iter::repeat_n(c, counts[c])).collect();
    let data = numbered(labels.len(), |i| labels[(i * 37) % labels.len()]);
    let (train, test) = data.train_test_split(0.25, 11);

    // round(69 · 0.25) = 17: floors 10 + 6 + 0 + 0 = 16, plus one for class 2 (remainder 0.75).
    assert_eq!((train.len(), test.len()), (52, 17));
    let count = |d: &Dataset<f64, 3>, c| d.labels().iter().filter(|&&l| l == c).count();
    assert_eq!((0..4).map(|c| count(&test, c)).collect::<Vec<_>>(), [10, 6, 1, 0]);
    for (c, &in_class) in counts.iter().enumerate() {
        assert_eq!(count(&train, c) + count(&test, c), in_class);
    }
    // Rows and labels travel together; both parts together hold each example once.
    let train_examples = examples(&data, train.features(), train.labels());
    let test_examples = examples(&data, test.features(), test.labels());
    assert!(train_examples.is_sorted() && test_examples.is_sorted());
    assert_eq!(sorted([train_examples, test_examples].concat()), (0..69).collect::<Vec<_>>());
}

#[test]
fn the_split_is_fixed_by_the_seed() {
    let data = numbered(200, |i| i % 3);
    assert_eq!(data.train_test_indices(0.3, 5), data.train_test_indices(0.3, 5));
    assert_ne!(data.train_test_indices(0.3, 5), data.train_test_indices(0.3, 6));
    // The class counts do not depend on the seed.
    let class_counts = |seed| {
        let (_, test) = data.train_test_split(0.3, seed);
        (0..3).map(|c| test.labels().iter().filter(|&&l| l == c).count()).collect::<Vec<_>>()
    };
    assert_eq!(class_counts(5), class_counts(6));
}

#[test]
fn the_extreme_fractions_put_everything_on_one_side() {
    let data = numbered(12, |i| i % 5);
    let all: Vec<usize> = (0..12).collect();
    assert_eq!(data.train_test_indices(0.0, 1), (all.clone(), vec![]));
    assert_eq!(data.train_test_indices(1.0, 1), (vec![], all));
}

#[test]
#[should_panic(expected = "train_test_split: the test fraction 1.5 must be in [0, 1]")]
fn a_test_fraction_above_one_panics() {
    numbered(4, |_| 0).train_test_split(1.5, 0);
}

#[test]
#[should_panic(expected = "must be in [0, 1]")]
fn a_nan_test_fraction_panics() {
    numbered(4, |_| 0).train_test_indices(f64::NAN, 0);
}

proptest! {
    #[test]
    fn any_split_is_a_stratified_partition_of_the_requested_size(
        labels in proptest::collection::vec(0usize..6, 0..120),
        fraction in 0.0f64..=1.0,
        seed in any::<u64>(),
    ) {
        let n = labels.len();
        let data = numbered(n, |i| labels[i]);
        let (train, test) = data.train_test_indices(fraction, seed);
        prop_assert_eq!(test.len(), (n as f64 * fraction).round() as usize);
        prop_assert_eq!(sorted([train.clone(), test.clone()].concat()), (0..n).collect::<Vec<_>>());
        for c in 0..6 {
            let in_class = labels.iter().filter(|&&l| l == c).count() as f64;
            let in_test = test.iter().filter(|&&i| labels[i] == c).count() as f64;
            prop_assert!((in_test - in_class * fraction).abs() < 1.0, "class {c}: {in_test} of {in_class}");
        }
    }

    #[test]
    fn any_pass_visits_each_example_once_in_batches_of_the_requested_size(
        n in 0usize..60,
        batch_size in 1usize..20,
        seed in any::<u64>(),
    ) {
        let data = numbered(n, |i| i % 3);
        let batches: Vec<_> = data.batches(batch_size, Order::Shuffled(seed)).collect();
        prop_assert_eq!(batches.len(), n.div_ceil(batch_size));
        let mut visited = Vec::new();
        for (k, (x, y)) in batches.iter().enumerate() {
            let expected = if k + 1 < batches.len() { batch_size } else { n - k * batch_size };
            prop_assert_eq!(y.len(), expected);
            visited.extend(examples(&data, x, y));
        }
        prop_assert_eq!(sorted(visited), (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn the_batches_visit_the_indices_of_their_order() {
    let data = numbered(23, |i| i % 3);
    for order in [Order::Sequential, Order::Shuffled(5)] {
        let indices = data.indices(order);
        let visited: Vec<usize> = data
            .batches(4, order)
            .flat_map(|(features, labels)| examples(&data, &features, &labels))
            .collect();
        assert_eq!(visited, indices);
        assert_eq!(sorted(indices), (0..23).collect::<Vec<_>>());
    }
    assert_ne!(data.indices(Order::Shuffled(5)), data.indices(Order::Shuffled(6)));
}

/// A label far beyond the others costs no memory per absent class, and the class
/// count does not wrap.
#[test]
fn sparse_and_extreme_labels_split_without_a_list_per_class() {
    let features = Tensor::<f64, _, Heap>::zeros_shaped((Dyn(4), Const::<1>));
    let data = Dataset::new(features.clone(), vec![0, 1 << 40, 0, 1 << 40]).unwrap();
    let (train, test) = data.train_test_indices(0.5, 3);
    assert_eq!((train.len(), test.len()), (2, 2));
    let test_labels: Vec<usize> = test.iter().map(|&i| data.labels()[i]).collect();
    assert!(test_labels.contains(&0) && test_labels.contains(&(1 << 40)), "{test_labels:?}");
    let extreme = Dataset::new(features, vec![0, usize::MAX, 1, 2]).unwrap();
    assert_eq!(extreme.num_classes(), usize::MAX);
}
