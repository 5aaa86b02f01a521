//! The comparison harness.
