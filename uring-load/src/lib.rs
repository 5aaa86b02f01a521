//! uring-load library.
