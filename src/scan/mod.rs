//! `buildopt scan`: what is inside an image, read without running it.
//!
//! - `package.rs`: what a cataloger finds in one file (packages, the OS, licences) and the
//!   package as reported, with its layer and Dockerfile origin;
//! - `model.rs`: the versioned inventory every renderer formats;
//! - `version/`: each ecosystem's version order;
//! - `osv.rs`: OSV records, and whether an installed version is affected by one;
//! - `catalog/`: which files declare packages and the parser of each ecosystem's format.

pub mod catalog;
pub mod model;
pub mod osv;
pub mod package;
pub mod version;

pub use package::{FileFacts, Found, OsRelease, PackageType};
