//! The deployer's integration tests, one binary (the AWS SDK's crates are
//! linked once, not once per topic). One module per topic, selected with
//! `cargo test -p deployer --test it <topic>::` (`environment::releases::`),
//! and `support` shared: the [`support::Account`] every topic runs the
//! deployer in, the resource names as the deployer derives them, a
//! synthetic function.
//!
//! No test changes process-wide state: each runs the deployer as a child
//! process in a folder of its own, against an emulator of its own.

mod bootstrap;
mod cli;
mod data;
mod environment;
mod fake_gh;
mod faults;
mod local_cloud;
mod support;
mod workflows;
