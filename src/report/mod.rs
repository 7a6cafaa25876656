//! Renderers: pure functions from data to text. They never touch the network, the environment
//! or the clock. `model.rs` holds the RunReport that every renderer of a build reads.

pub mod build;
pub mod model;
pub mod plan;
