//! GitHub Actions step outputs: appends `name<<DELIMITER … DELIMITER` blocks to `GITHUB_OUTPUT`.
//!
//! The delimiter is random per value and checked against the value, so text from the repository
//! (image names, file names) can never end a block early and inject other outputs.

use std::io::Write;
use std::path::Path;

/// Appends each output to the file at `path`.
pub fn write_step_outputs(path: &Path, outputs: &[(&str, String)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        text.push_str(&output_block(name, value)?);
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// One `name<<DELIM\nvalue\nDELIM\n` block with a delimiter the value does not contain.
pub fn output_block(name: &str, value: &str) -> std::io::Result<String> {
    loop {
        let delimiter = random_delimiter()?;
        if !value.contains(&delimiter) && !name.contains(&delimiter) {
            return Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        }
    }
}

fn random_delimiter() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| std::io::Error::other(err.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("ghadelimiter_{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_use_fresh_delimiters_absent_from_the_value() {
        let value = "line1\nghadelimiter_x\nEOF";
        let block = output_block("plan", value).expect("block");
        let first = block.lines().next().expect("line");
        let delimiter = first.strip_prefix("plan<<").expect("prefix");
        assert!(delimiter.starts_with("ghadelimiter_") && delimiter.len() == 13 + 32);
        assert!(block.ends_with(&format!("\n{delimiter}\n")));
        assert!(block.contains(value));
        assert_ne!(output_block("plan", value).expect("block"), block);
    }

    #[test]
    fn appends_to_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        std::fs::write(&path, "earlier=1\n").expect("write");
        write_step_outputs(&path, &[("any", "true".into()), ("count", "2".into())]).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("earlier=1\nany<<ghadelimiter_"));
        assert_eq!(text.matches("ghadelimiter_").count(), 4);
    }
}
