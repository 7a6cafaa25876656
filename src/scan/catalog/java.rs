//! Java archives.

use crate::scan::package::{FileFacts, Found};

pub fn wants(_path: &str) -> bool {
    false
}

pub fn parse(_path: &str, _bytes: &[u8]) -> Result<Option<FileFacts>, String> {
    unimplemented!()
}
