//! Spare heap buffers, kept per thread for the next tensor that needs one.
//!
//! Static mode makes each value and each cotangent of a gradient afresh and drops them
//! when the gradient is done: a working set of many megabytes per gradient. Freed to
//! the system allocator, glibc's `malloc` hands such memory back to the system and the
//! next gradient takes a page fault per 4 KiB to get it again (a decoder's gradient
//! spent 40 % of its time so). So a heap buffer of at least [`SMALLEST_BYTES`] whose
//! last owner drops it goes to the spares of the thread that drops it, and a new heap
//! buffer of the same element type takes a spare whose room is between its length
//! and a quarter more, before asking the allocator. A spare keeps the padding its
//! buffer was laid out with ([`padding`]) as its elements; its room is the capacity
//! after them. A thread keeps at most
//! [`MOST_BYTES`] of spares: past that, buffers of the capacity used least recently
//! are freed first, one at a time.
//! [`Heap::release_spares`](super::Heap::release_spares) frees them all.

use core::any::{Any, TypeId};
use core::cell::RefCell;
use std::boxed::Box;
use std::collections::BTreeMap;
use std::vec::Vec;

/// The smallest buffer worth keeping: the allocator serves smaller ones from its own
/// caches, without page faults.
pub const SMALLEST_BYTES: usize = 16 * 1024;
/// The most bytes of spare buffers one thread keeps.
pub const MOST_BYTES: usize = 256 * 1024 * 1024;
/// The bytes of a page, within which [`padding`] places a buffer's first element.
pub const PAGE_BYTES: usize = 4096;
/// The step between the offsets that [`padding`] gives successive buffers: 37 cache
/// lines, which visits the 64 lines of a page in a scattered order.
const OFFSET_STEP_BYTES: usize = 37 * 64;

/// Whether a buffer of `len` elements of `T` is worth keeping: from
/// [`SMALLEST_BYTES`] to what fits the spares with a page of padding (a larger one is
/// left to the allocator, which gives zeros without writing them).
#[inline(always)]
pub fn worth_keeping<T>(len: usize) -> bool {
    let bytes = len.saturating_mul(size_of::<T>());
    size_of::<T>() > 0 && (SMALLEST_BYTES..=MOST_BYTES - 2 * PAGE_BYTES).contains(&bytes)
}

/// The elements of padding that put the first element after them at this thread's
/// next offset within a page, for a buffer allocated at `address` (with room for
/// [`PAGE_BYTES`] more): successive buffers start at offsets far apart.
pub fn padding<T>(address: *const T) -> usize {
    let offset = SPARES
        .try_with(|spares| {
            let mut spares = spares.try_borrow_mut().ok()?;
            spares.offsets += 1;
            Some(spares.offsets * OFFSET_STEP_BYTES % PAGE_BYTES)
        })
        .ok()
        .flatten()
        .unwrap_or(0);
    let gap = (offset + PAGE_BYTES - address as usize % PAGE_BYTES) % PAGE_BYTES;
    gap / size_of::<T>()
}

/// One element type's spares: by room (in elements), the buffers and when that room
/// was last given or taken.
struct Shelf<T> {
    stacks: BTreeMap<usize, (u64, Vec<Vec<T>>)>,
}

/// A shelf of any element type, as the eviction sees it.
trait AnyShelf: Any {
    /// The room used least recently, with its time.
    fn least_recent(&self) -> Option<(u64, usize)>;
    /// Frees one buffer of `room`; returns its bytes.
    fn free_one(&mut self, room: usize) -> usize;
}

impl<T: 'static> AnyShelf for Shelf<T> {
    fn least_recent(&self) -> Option<(u64, usize)> {
        self.stacks.iter().map(|(room, (used, _))| (*used, *room)).min()
    }

    fn free_one(&mut self, room: usize) -> usize {
        let Some((_, stack)) = self.stacks.get_mut(&room) else { return 0 };
        let bytes = stack.pop().map_or(0, |buffer| buffer.capacity() * size_of::<T>());
        if stack.is_empty() {
            self.stacks.remove(&room);
        }
        bytes
    }
}

struct Spares {
    bytes: usize,
    /// Counts gives and takes: the time of a use.
    clock: u64,
    /// Counts the buffers [`padding`] has placed.
    offsets: usize,
    /// A `Shelf<T>` per element type; few types, so a list.
    shelves: Vec<(TypeId, Box<dyn AnyShelf>)>,
}

impl Spares {
    /// No spares.
    const fn new() -> Self {
        Spares { bytes: 0, clock: 0, offsets: 0, shelves: Vec::new() }
    }

    fn shelf<T: 'static>(&mut self) -> &mut Shelf<T> {
        let id = TypeId::of::<T>();
        let index = match self.shelves.iter().position(|(of, _)| *of == id) {
            Some(index) => index,
            None => {
                self.shelves.push((id, Box::new(Shelf::<T> { stacks: BTreeMap::new() })));
                self.shelves.len() - 1
            }
        };
        let shelf: &mut dyn Any = self.shelves[index].1.as_mut();
        shelf.downcast_mut().expect("a shelf holds buffers of the type it is listed under")
    }

    /// Frees buffers of the rooms used least recently until `bytes` (at most
    /// [`MOST_BYTES`]) more fit.
    fn make_room(&mut self, bytes: usize) {
        while self.bytes + bytes > MOST_BYTES {
            let oldest = self
                .shelves
                .iter()
                .enumerate()
                .filter_map(|(index, (_, shelf))| {
                    shelf.least_recent().map(|(used, capacity)| (used, index, capacity))
                })
                .min();
            let Some((_, index, room)) = oldest else { return };
            self.bytes -= self.shelves[index].1.free_one(room);
        }
    }
}

std::thread_local! {
    static SPARES: RefCell<Spares> = const { RefCell::new(Spares::new()) };
}

/// A buffer with room for more than `len` elements after its own (its padding), at
/// most a quarter more, if this thread keeps one.
pub fn take<T: 'static>(len: usize) -> Option<Vec<T>> {
    if !worth_keeping::<T>(len) {
        return None;
    }
    SPARES
        .try_with(|spares| {
            let mut spares = spares.try_borrow_mut().ok()?;
            spares.clock += 1;
            let now = spares.clock;
            let shelf = spares.shelf::<T>();
            let (&room, (used, stack)) =
                shelf.stacks.range_mut(len + 1..=len.saturating_add(len / 4 + 1)).next()?;
            *used = now;
            let buffer = stack.pop().expect("a shelf keeps no empty stacks");
            if stack.is_empty() {
                shelf.stacks.remove(&room);
            }
            spares.bytes -= buffer.capacity() * size_of::<T>();
            Some(buffer)
        })
        .ok()
        .flatten()
}

/// Keeps `buffer`'s allocation with its first `padding` elements for a later
/// [`take`], if its size is between [`SMALLEST_BYTES`] and [`MOST_BYTES`] (making
/// room as the module says); frees it otherwise.
pub fn give<T: Copy + 'static>(mut buffer: Vec<T>, padding: usize) {
    let bytes = buffer.capacity() * size_of::<T>();
    if !(SMALLEST_BYTES..=MOST_BYTES).contains(&bytes) {
        return;
    }
    // During the thread's teardown the spares may be gone: the buffer is freed.
    let _ = SPARES.try_with(|spares| {
        let Ok(mut spares) = spares.try_borrow_mut() else { return };
        spares.make_room(bytes);
        spares.bytes += bytes;
        spares.clock += 1;
        let now = spares.clock;
        // `Copy` elements: nothing to drop.
        buffer.truncate(padding);
        let room = buffer.capacity() - buffer.len();
        let (used, stack) = spares.shelf::<T>().stacks.entry(room).or_default();
        *used = now;
        stack.push(buffer);
    });
}

/// Frees this thread's spare buffers.
pub fn release() {
    let _ = SPARES.try_with(|spares| {
        if let Ok(mut spares) = spares.try_borrow_mut() {
            *spares = Spares::new();
        }
    });
}

/// The bytes of spare buffers this thread keeps.
#[cfg(test)]
pub fn kept_bytes() -> usize {
    SPARES.with(|spares| spares.borrow().bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_taken_again_by_a_length_it_fits() {
        release();
        let mut buffer: Vec<f64> = Vec::with_capacity(8192 + 3);
        let address = buffer.as_ptr();
        buffer.resize(100, 1.0);
        // Kept with its 3 elements of padding: room for 8192.
        give(buffer, 3);
        assert_eq!(kept_bytes(), 8195 * 8);
        // Another element type, a length without a slot to spare or one under 4/5 of
        // the room: none.
        assert!(take::<f32>(8191).is_none());
        assert!(take::<u64>(8191).is_none());
        assert!(take::<f64>(8192).is_none());
        assert!(take::<f64>(6552).is_none());
        let again = take::<f64>(6553).expect("the spare fits 6553 elements and one more");
        assert_eq!((again.as_ptr(), again.as_slice(), again.capacity()), (address, &[1.0; 3][..], 8195));
        assert_eq!(kept_bytes(), 0);
        assert!(take::<f64>(6553).is_none());
        give(again, 3);
        release();
        assert_eq!(kept_bytes(), 0);
        assert!(take::<f64>(8191).is_none());
    }

    #[test]
    fn small_and_oversized_buffers_are_freed_and_past_the_limit_the_least_recent_go_first() {
        release();
        give(Vec::<f64>::with_capacity(SMALLEST_BYTES / 8 - 1), 0);
        assert_eq!(kept_bytes(), 0);
        // Buffers of half, a quarter and half the limit (reserved, never touched).
        give(Vec::<f32>::with_capacity(MOST_BYTES / 2 / 4), 0);
        give(Vec::<f64>::with_capacity(MOST_BYTES / 4 / 8), 0);
        give(Vec::<f64>::with_capacity(MOST_BYTES / 2 / 8), 0);
        assert_eq!(kept_bytes(), MOST_BYTES / 4 * 3);
        // The f32 buffer, given first, made room for the last.
        assert!(take::<f32>(MOST_BYTES / 2 / 4 - 1).is_none());
        // A buffer past the limit is freed without emptying the spares.
        give(Vec::<f64>::with_capacity(MOST_BYTES / 8 + 1), 0);
        assert_eq!(kept_bytes(), MOST_BYTES / 4 * 3);
        assert!(
            take::<f64>(MOST_BYTES / 2 / 8 - 1).is_some() && take::<f64>(MOST_BYTES / 4 / 8 - 1).is_some()
        );
        assert_eq!(kept_bytes(), 0);
    }

    #[test]
    fn padding_places_successive_buffers_far_apart_within_a_page() {
        let buffer: Vec<f32> = Vec::with_capacity(8192 + PAGE_BYTES / 4);
        let offsets: Vec<usize> =
            (0..64).map(|_| (buffer.as_ptr() as usize + padding(buffer.as_ptr()) * 4) % PAGE_BYTES).collect();
        // Every cache line of the page once; neighbours at least 16 lines apart.
        let mut lines: Vec<usize> = offsets.iter().map(|offset| offset / 64).collect();
        lines.sort_unstable();
        assert_eq!(lines, (0..64).collect::<Vec<_>>());
        for pair in offsets.windows(2) {
            let apart = (pair[1] + PAGE_BYTES - pair[0]) % PAGE_BYTES;
            assert!((1024..=PAGE_BYTES - 1024).contains(&apart), "{pair:?}");
        }
    }

    #[test]
    fn eviction_frees_one_buffer_at_a_time() {
        release();
        let quarter = MOST_BYTES / 4 / 8;
        for _ in 0..4 {
            give(Vec::<f64>::with_capacity(quarter), 0);
        }
        assert_eq!(kept_bytes(), MOST_BYTES);
        // One more of that size replaces one, not all four.
        give(Vec::<f64>::with_capacity(quarter), 0);
        assert_eq!(kept_bytes(), MOST_BYTES);
        release();
    }
}
