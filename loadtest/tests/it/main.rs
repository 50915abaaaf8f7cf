//! loadtest's integration tests, one binary: the scenarios and the binary
//! against the real API router served on loopback over a table on the
//! emulator, and the API's real Python client against the same router. One
//! module per topic (`cargo test -p loadtest --test it real_client::`),
//! `support` shared.

mod cli;
mod real_client;
mod scenarios;
mod support;
