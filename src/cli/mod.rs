//! The subcommands that print for an operator: `geoline check`, `geoline lookup`,
//! `geoline keygen` and `geoline zone flush`.
//!
//! Binary only: these modules reach the library through [`geoline::server`] and
//! `geoline::internal`, as the benches do, and own nothing but their output.

pub(crate) mod check;
pub(crate) mod explain;
pub(crate) mod keygen;
pub(crate) mod zone;
