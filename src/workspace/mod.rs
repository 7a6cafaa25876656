//! The repository's images: discovery, Dockerfiles, ignore files and contexts.

pub mod dockerfile;
pub mod dockerignore;
