//! The state crate's integration tests, one binary: the state backends and
//! locks against the emulator (remote) and a temp folder (local). One module
//! per topic (`cargo test -p state --test it locks::`), `support` shared.

mod documents;
mod locks;
mod support;
