//! The stacks: lists of resources with their dependencies, built from settings.

pub mod bootstrap;
pub mod environment;

#[cfg(test)]
mod snapshots;
