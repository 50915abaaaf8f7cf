//! The stacks: lists of resources with their dependencies, built from settings.

pub mod bootstrap;
pub mod environment;
pub mod preview;

#[cfg(test)]
mod snapshots;
