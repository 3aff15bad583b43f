//! Server wiring (placeholder: being written).
