//! Integration tests: one binary.

mod git_plumbing;
mod range;
mod support;
