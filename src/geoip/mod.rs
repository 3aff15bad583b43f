//! GeoIP databases (placeholder: being written).
