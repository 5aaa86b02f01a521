//! uring-server library.
