//! Renderers: pure functions from data to text. They never touch the network, the environment
//! or the clock.

pub mod plan;
