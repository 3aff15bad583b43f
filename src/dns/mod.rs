//! DNS (placeholder: being written).
