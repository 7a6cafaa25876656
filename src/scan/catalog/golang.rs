//! Go build info in executables.

use crate::scan::package::{FileFacts, Found};

pub fn parse(_bytes: &[u8]) -> Result<Option<Vec<Found>>, String> {
    unimplemented!()
}

