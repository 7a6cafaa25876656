//! Python: dist-info and egg-info metadata.

use crate::scan::package::{FileFacts, Found};

pub fn wants(_path: &str) -> bool {
    false
}

pub fn parse(_path: &str, _bytes: &[u8]) -> Result<FileFacts, String> {
    unimplemented!()
}
