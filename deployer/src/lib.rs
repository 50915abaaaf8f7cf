//! The deployer's library: configuration, state selection and commands. The
//! `deployer` binary (src/main.rs) parses the command line and prints.

pub mod artifact;
pub mod aws;
pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod health_check;
pub mod layer_zip;
pub mod pre_traffic;
pub mod ranking;
pub mod resources;
pub mod stacks;
pub mod state_backend;
