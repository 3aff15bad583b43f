//! Small leaves the rest of the crate shares, with no imports from it.

// One `unsafe` block (a CPU hint, sound for any address), with its SAFETY note.
#[allow(unsafe_code)]
pub(crate) mod prefetch;
pub(crate) mod time;
