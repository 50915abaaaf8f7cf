//! The deployer's library: configuration, state selection and commands. The
//! `deployer` binary (src/main.rs) parses the command line and prints.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod package;
pub mod ranking;
pub mod resources;
pub mod stacks;
pub mod state_backend;
pub mod ui;

#[cfg(test)]
mod module_graph;
