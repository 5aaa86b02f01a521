//! Shared helpers for the black-box tests (spawning binaries, peers, raw sockets); the tests are in `tests/`.
