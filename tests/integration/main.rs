//! Integration tests: one binary, one module per area, fixtures under `tests/fixtures/`.

mod build;
mod cache;
mod cache_build;
mod cli;
mod dockerignore_oracle;
mod engine;
mod fake_api;
mod git_plumbing;
mod notify;
mod plan;
mod range;
mod support;
