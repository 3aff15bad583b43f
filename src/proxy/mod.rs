//! stub
pub mod mapping;
pub mod rewrite;
