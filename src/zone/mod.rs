//! Zones (placeholder: being written).
