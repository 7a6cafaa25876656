//! `buildopt scan`: what is inside an image, read without running it.
//!
//! - `package.rs`: what a cataloger finds in one file (packages, the OS, licences) and the
//!   package as reported, with its layer and Dockerfile origin;
//! - `model.rs`: the versioned inventory every renderer formats;
//! - `catalog/`: which files declare packages and the parser of each ecosystem's format;
//! - `purl.rs`: the package URL of each package found, in the forms syft writes.

pub mod catalog;
pub mod model;
pub mod package;
pub mod purl;

pub use package::{FileFacts, Found, OsRelease, PackageType};
