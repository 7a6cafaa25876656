//! Integration tests: one binary, one module per area, fixtures under `tests/fixtures/`.

mod build;
mod cache;
mod cache_build;
mod ci;
mod cli;
mod dockerignore_oracle;
mod engine;
mod git_plumbing;
mod plan;
mod range;
mod support;
mod wrappers;
