//! dpkg: `var/lib/dpkg/status`, distroless `status.d/` stanzas, and licences from copyright files.

use crate::scan::package::{FileFacts, Found};

pub fn wants(_path: &str) -> bool {
    false
}

pub fn parse(_path: &str, _bytes: &[u8]) -> Result<FileFacts, String> {
    unimplemented!()
}
