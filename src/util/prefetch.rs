//! Asking the CPU for memory before it is read: a hint, with no effect but on time.
//!
//! Walks that jump between allocations in an order unrelated to their place in memory
//! (a zone transfer reading RRsets in a hash table's order) wait for memory at every
//! step; asking for the next few while the current one is worked on overlaps the waits.
//! On x86-64 the SSE `prefetcht0` instruction (an `unsafe` block: the intrinsic is a
//! `target_feature` function); elsewhere nothing.

/// Asks for the cache line holding `p` to be brought into every cache level. Any address
/// will do, valid or not.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64, so the instruction exists; a prefetch never faults,
    // whatever the address (an invalid one is dropped), and neither reads nor writes
    // anything the program can observe.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
