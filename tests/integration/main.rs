//! Integration tests: one binary.
mod dockerignore_oracle;
