//! DNS (being written: the wire layer first).
pub mod ecs;
pub mod query;
pub mod response;
