//! rpm databases: sqlite read; Berkeley DB and NDB reported as not read.

use crate::scan::package::{FileFacts, Found};

pub fn wants(_path: &str) -> bool {
    false
}

pub fn parse(_path: &str, _bytes: &[u8]) -> Result<FileFacts, String> {
    unimplemented!()
}
