//! Small leaves the rest of the crate shares, with no imports from it.

pub(crate) mod prefetch;
pub(crate) mod time;
