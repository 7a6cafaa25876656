//! Integration tests: one binary, one module per area, fixtures under `tests/fixtures/`.

mod benchmark;
mod build;
mod cache;
mod cache_build;
mod cache_hardening;
mod canary_sweep;
mod ci;
mod cli;
mod cross_engine;
mod dockerignore_oracle;
mod engine;
mod engine_identity;
mod failures;
mod fake_api;
mod fuzz;
mod git_plumbing;
mod hostile_input;
mod hostile_names;
mod notify;
mod plan;
mod range;
mod release;
mod settings;
mod support;
mod wrappers;
