//! GPU buffers, and how separate elementwise operations fuse into one kernel: see
//! [`DeviceBuffer`].

use std::format;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::vec;
use std::vec::Vec;

use cudarc::driver::CudaSlice;

use super::symbolic::{self, Expression};
use super::{CudaElement, CudaError, CudaScalar, Device, Indexing, Kernel, Store};

/// The most buffers one fused formula reads.
pub const MOST_LEAVES: usize = 8;

/// The most recorded operations in one fused formula.
pub const MOST_NODES: usize = 128;

/// A buffer of GPU memory holding a tensor's elements, each as its
/// [`CudaScalar::PARTS`] real parts: computed, or pending.
///
/// An elementwise operation on real `Cuda` tensors (`exp`, `+`, `hadamard`,
/// scaling, `relu`, a user's `ScalarFunction` or `FusedFunction`, …; on complex ones
/// `+`, `−` and real scaling) does not launch its kernel: its result is *pending*, the operation's formula recorded on symbols
/// (the same recording that generates every kernel) over the computed buffers it
/// reads. An elementwise operation on a pending input substitutes the input's
/// formula for it, so a chain such as `(&(x.exp() * 2.0) + &y).relu()` stays one
/// formula over `x` and `y`. Anything else that reads the buffer — a reduction, a
/// product, a copy to the host, an in-place update — computes it first: one
/// generated kernel for the whole chain, compiled once per formula (named by its
/// hash; the scalars, such as a scaling factor, are kernel arguments).
///
/// A formula takes in its inputs' formulas while it reads at most [`MOST_LEAVES`]
/// buffers and they hold at most [`MOST_NODES`] operations (the operation's own
/// come on top, and a `FusedFunction` of more inputs reads as many); a larger input
/// is computed on its own first. A pending result read by two chains is computed in
/// each (elementwise work is cheap next to the memory traffic fusion saves), and once
/// more if something else reads it.
///
/// Buffers are shared, not copied: a clone of a tensor and a formula that reads a
/// buffer hold the same memory, and a write in place (`add_scaled`, an optimiser's
/// update, an accumulated gradient) copies it first when anything else holds it, so
/// no pending result ever sees a later write.
pub struct DeviceBuffer<T: CudaScalar> {
    elements: Arc<Elements<T::Part>>,
}

/// The parts of a buffer, computed or still a formula.
struct Elements<P: CudaElement> {
    /// The number of parts.
    parts: usize,
    /// The GPU memory, once computed.
    computed: OnceLock<CudaSlice<P>>,
    /// The formula, until computed.
    pending: Mutex<Option<Formula<P>>>,
}

/// An elementwise formula over computed buffers and scalar parameters.
#[derive(Clone)]
struct Formula<P: CudaElement> {
    /// The buffers it reads, each computed: its inputs in order.
    leaves: Vec<Arc<Elements<P>>>,
    /// Its scalar parameters.
    params: Vec<P>,
    /// One output over `leaves.len()` inputs and `params.len()` parameters.
    expression: Expression,
}

impl<P: CudaElement> Formula<P> {
    /// Runs the formula as one generated kernel into a new buffer of `parts` parts.
    fn compute(&self, parts: usize) -> Result<CudaSlice<P>, CudaError> {
        let mut out = Device::get()?.uninitialized(parts)?;
        let expression = self.expression.clone();
        let kernel = Kernel::elementwise(
            format!("fused{:016x}", self.expression.fingerprint()),
            &vec![Indexing::Element; self.leaves.len()],
            self.params.len(),
            Store::Overwrite,
            move |x, p| expression.replay(x, p),
        );
        let inputs = self.leaves.iter().map(|leaf| leaf.computed()).collect::<Result<Vec<_>, _>>()?;
        kernel.launch(&inputs, &self.params, (1, parts, 1), &mut out)?;
        Ok(out)
    }
}

impl<P: CudaElement> Elements<P> {
    fn computed_from(slice: CudaSlice<P>, parts: usize) -> Elements<P> {
        Elements { parts, computed: OnceLock::from(slice), pending: Mutex::new(None) }
    }

    /// The GPU memory, computing the formula first if it is pending.
    fn computed(&self) -> Result<&CudaSlice<P>, CudaError> {
        if let Some(slice) = self.computed.get() {
            return Ok(slice);
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slice) = self.computed.get() {
            return Ok(slice); // computed by another thread meanwhile
        }
        let formula = pending.as_ref().expect("a buffer is computed or pending");
        let slice = formula.compute(self.parts)?;
        *pending = None; // lets go of the buffers it read
        Ok(self.computed.get_or_init(|| slice))
    }

    /// The formula, if the buffer is pending and not yet computed.
    fn formula(&self) -> Option<Formula<P>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl<T: CudaScalar> DeviceBuffer<T> {
    /// A computed buffer of `parts` parts (`slice` may be longer: a buffer is never
    /// empty).
    pub(crate) fn computed(slice: CudaSlice<T::Part>, parts: usize) -> Self {
        DeviceBuffer { elements: Arc::new(Elements::computed_from(slice, parts)) }
    }

    /// The GPU memory, computed first if pending.
    pub(crate) fn slice(&self) -> Result<&CudaSlice<T::Part>, CudaError> {
        self.elements.computed()
    }

    /// The GPU memory to write in place: computed first if pending, and copied first
    /// if a clone or a pending formula shares it.
    pub(crate) fn slice_mut(&mut self) -> Result<&mut CudaSlice<T::Part>, CudaError> {
        if Arc::get_mut(&mut self.elements).is_none() {
            let copy = self.elements.computed()?.try_clone()?;
            self.elements = Arc::new(Elements::computed_from(copy, self.elements.parts));
        }
        let elements = Arc::get_mut(&mut self.elements).expect("the buffer is not shared");
        elements.computed()?;
        Ok(elements.computed.get_mut().expect("computed above"))
    }

    /// The pending result of the elementwise kernel `kernel` (every input read at the
    /// element, the result written) on `inputs` and `params`, each input's own formula
    /// substituted while the total stays within [`MOST_LEAVES`] and [`MOST_NODES`].
    ///
    /// # Panics
    /// When `kernel` is not such a kernel (a library bug).
    pub(crate) fn elementwise(
        kernel: &Kernel,
        inputs: &[&DeviceBuffer<T>],
        params: &[T::Part],
        parts: usize,
    ) -> Result<Self, CudaError> {
        assert!(
            kernel.combine.is_none()
                && kernel.store == Store::Overwrite
                && kernel.indexing.iter().all(|indexing| *indexing == Indexing::Element)
                && kernel.indexing.len() == inputs.len()
                && kernel.params == params.len(),
            "kernel `{}` is not a fusable elementwise kernel of these inputs",
            kernel.name
        );
        let mut fused = Fusion::default();
        let sources = (inputs.iter().enumerate())
            .map(|(k, input)| fused.source(&input.elements, inputs.len() - 1 - k))
            .collect::<Result<Vec<_>, _>>()?;
        let own_params = fused.params.len();
        fused.params.extend_from_slice(params);
        let expression = symbolic::record(fused.leaves.len(), fused.params.len(), |x, p| {
            let values: Vec<_> = sources.iter().map(|source| source.value(x, p)).collect();
            vec![(kernel.function)(&values, &p[own_params..])]
        })
        .map_err(|e| CudaError::Unrecordable(format!("kernel `{}`: {e}", kernel.name)))?;
        let formula = Formula { leaves: fused.leaves, params: fused.params, expression };
        let elements = Elements { parts, computed: OnceLock::new(), pending: Mutex::new(Some(formula)) };
        Ok(DeviceBuffer { elements: Arc::new(elements) })
    }
}

/// The leaves and parameters of a formula being built.
struct Fusion<P: CudaElement> {
    leaves: Vec<Arc<Elements<P>>>,
    params: Vec<P>,
    nodes: usize,
}

impl<P: CudaElement> Default for Fusion<P> {
    fn default() -> Self {
        Fusion { leaves: Vec::new(), params: Vec::new(), nodes: 0 }
    }
}

/// Where one input of an elementwise kernel comes from in a fused formula.
enum Source<P: CudaElement> {
    /// A computed buffer: the formula's leaf of this index.
    Leaf(usize),
    /// A pending input's formula, its leaves at these indices, its parameters from
    /// this index on.
    Inlined { formula: Formula<P>, leaves: Vec<usize>, first_param: usize },
}

impl<P: CudaElement> Source<P> {
    fn value(&self, x: &[symbolic::Sym], p: &[symbolic::Sym]) -> symbolic::Sym {
        match self {
            Source::Leaf(k) => x[*k],
            Source::Inlined { formula, leaves, first_param } => {
                let inputs: Vec<_> = leaves.iter().map(|&k| x[k]).collect();
                formula.expression.replay(&inputs, &p[*first_param..*first_param + formula.params.len()])
            }
        }
    }
}

impl<P: CudaElement> Fusion<P> {
    /// The index of `elements` among the leaves, added if new.
    fn leaf(&mut self, elements: &Arc<Elements<P>>) -> usize {
        match self.leaves.iter().position(|leaf| Arc::ptr_eq(leaf, elements)) {
            Some(k) => k,
            None => {
                self.leaves.push(Arc::clone(elements));
                self.leaves.len() - 1
            }
        }
    }

    /// How the formula reads `input`: its own formula if it is pending and fits
    /// (leaving a leaf for each of the `later` inputs still to come), else its
    /// computed buffer.
    fn source(&mut self, input: &Arc<Elements<P>>, later: usize) -> Result<Source<P>, CudaError> {
        if let Some(formula) = input.formula() {
            let new_leaves =
                formula.leaves.iter().filter(|leaf| !self.leaves.iter().any(|l| Arc::ptr_eq(l, leaf)));
            let fits = self.leaves.len() + new_leaves.count() + later <= MOST_LEAVES
                && self.nodes + formula.expression.nodes.len() <= MOST_NODES;
            if fits {
                self.nodes += formula.expression.nodes.len();
                let leaves = formula.leaves.iter().map(|leaf| self.leaf(leaf)).collect();
                let first_param = self.params.len();
                self.params.extend_from_slice(&formula.params);
                return Ok(Source::Inlined { formula, leaves, first_param });
            }
        }
        input.computed()?;
        self.nodes += 1;
        Ok(Source::Leaf(self.leaf(input)))
    }
}

/// A clone shares the buffer (computed or pending); a write in place copies it then.
impl<T: CudaScalar> Clone for DeviceBuffer<T> {
    fn clone(&self) -> Self {
        DeviceBuffer { elements: Arc::clone(&self.elements) }
    }
}

impl<T: CudaScalar> core::fmt::Debug for DeviceBuffer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = if T::PARTS == 1 { "" } else { "complex " };
        let state = if self.elements.computed.get().is_some() { "" } else { ", pending" };
        let elements = self.elements.parts / T::PARTS;
        write!(f, "DeviceBuffer<{kind}{}>({elements} elements{state})", T::Part::C_TYPE.name())
    }
}
