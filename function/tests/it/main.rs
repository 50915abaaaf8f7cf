//! The function's integration tests, one binary: the router as Lambda and
//! local mode serve it, over a table of its own on the emulator per test, and
//! the `playground-api` binary. One module per topic (`cargo test -p function
//! --test it ranks::`), `support` shared (with `benches/ranks.rs`).
//!
//! No test changes process-wide state (environment variables, the working
//! directory, a global subscriber): the tests that need a variable set run
//! the binary as a child process (`local_mode`), and the ones that inject
//! faults do it on an emulator of their own, so they all share one process.

mod access;
mod classroom;
mod concurrency;
mod contract;
mod cost;
mod deadlines;
mod local_mode;
mod moral_compass;
mod openapi;
mod pagination;
mod races;
mod ranks;
mod sessions;
mod support;
