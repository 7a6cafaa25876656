//! Ruby gems: the installed gems' `specifications/*.gemspec` files.
//!
//! Owns: reading name, version and licences from the Ruby code RubyGems writes for each
//! installed gem (`Gem::Specification#to_ruby`): one `s.<attribute> = <literal>` assignment per
//! line, with strings as `"rack".freeze`, `'rack'` or the `%q{rack}` of older RubyGems, and the
//! version either a string or `Gem::Version.new("...")`. The file is not evaluated: the lines
//! are matched, as syft's `parse_gemspec.go` does. Gems live in `specifications/` beside
//! `gems/` wherever `GEM_HOME` is (`usr/lib/ruby/gems/3.1.0/specifications/`,
//! `usr/local/bundle/specifications/`), and Debian puts its own in
//! `usr/share/rubygems-integration/all/specifications/`.
//!
//! A file without a `name` or `version` assignment is an error; `license` and `licenses` are
//! optional and their values are kept each once, in order.

use std::sync::LazyLock;

use regex::Regex;

use crate::scan::package::{FileFacts, Found, PackageType};

/// `<receiver>.<attribute> = <rest of the line>` at the start of a line.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^[ \t]*[A-Za-z_]\w*\.(name|version|licenses?)[ \t]*=[ \t]*(.*)$")
        .expect("the assignment pattern is valid")
});

/// A Ruby string literal: `"..."` (with escapes), `'...'`, or `%q{...}`; group 1, 2 or 3.
static STRING_LITERAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|%q\{([^}]*)\}"#)
        .expect("the string pattern is valid")
});

/// Whether `path` is a `.gemspec` directly in a `specifications` directory.
pub fn wants(path: &str) -> bool {
    let mut segments = path.rsplit('/');
    let file_name = segments.next().unwrap_or_default();
    let in_specifications = segments.next() == Some("specifications");
    in_specifications && file_name.len() > ".gemspec".len() && file_name.ends_with(".gemspec")
}

/// The gem a specification describes; the first `name` and `version` assignments count.
pub fn parse(bytes: &[u8]) -> Result<FileFacts, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut name = None;
    let mut version = None;
    let mut licenses: Vec<String> = Vec::new();
    for assignment in ASSIGNMENT.captures_iter(&text) {
        let value = assignment.get(2).map_or("", |value| value.as_str());
        match assignment.get(1).map_or("", |attribute| attribute.as_str()) {
            "name" => name = name.or_else(|| first_string(value)),
            "version" => version = version.or_else(|| first_string(value)),
            _ => add_each_once(&mut licenses, strings(value)),
        }
    }
    let name = name.ok_or("no `name` assignment")?;
    let version = version.ok_or("no `version` assignment")?;
    let mut found = Found::new(PackageType::Gem, name, version);
    found.licenses = licenses;
    Ok(FileFacts::Packages {
        database: false,
        packages: vec![found],
    })
}

/// The non-empty string literals of a line, in order.
fn strings(line: &str) -> impl Iterator<Item = &str> {
    STRING_LITERAL.captures_iter(line).filter_map(|literal| {
        let text = literal
            .get(1)
            .or(literal.get(2))
            .or(literal.get(3))?
            .as_str()
            .trim();
        (!text.is_empty()).then_some(text)
    })
}

/// The first non-empty string literal of a line.
fn first_string(line: &str) -> Option<&str> {
    strings(line).next()
}

/// Appends the items not yet in `list`.
fn add_each_once<'a>(list: &mut Vec<String>, items: impl Iterator<Item = &'a str>) {
    for item in items {
        if !list.iter().any(|known| known == item) {
            list.push(item.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RACK: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/gem/rack-2.2.22.gemspec");

    fn package(bytes: &[u8]) -> Found {
        match parse(bytes) {
            Ok(FileFacts::Packages {
                database: false,
                mut packages,
            }) if packages.len() == 1 => packages.remove(0),
            other => panic!("expected one package, got {other:?}"),
        }
    }

    #[test]
    fn wants_gemspecs_in_a_specifications_directory() {
        assert!(wants(
            "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec"
        ));
        assert!(wants("usr/local/bundle/specifications/rails-7.1.3.gemspec"));
        assert!(wants("specifications/a-1.gemspec"));
        assert!(!wants("usr/local/bundle/specifications/.gemspec"));
        assert!(!wants("usr/local/bundle/gems/rails-7.1.3/rails.gemspec"));
        assert!(!wants("app/rack.gemspec"));
        assert!(!wants(
            "usr/local/bundle/specifications/rack-2.2.22.gemspec.bak"
        ));
    }

    #[test]
    fn reads_a_debian_gemspec() {
        let rack = package(RACK);
        let mut expected = Found::new(PackageType::Gem, "rack", "2.2.22");
        expected.licenses = vec!["MIT".to_string()];
        assert_eq!(rack, expected);
    }

    #[test]
    fn older_and_other_forms() {
        let spec = br#"Gem::Specification.new do |spec|
  spec.name = %q{json}
  spec.version = Gem::Version.new("2.7.1")
  spec.license = 'Ruby'
  spec.licenses = ["Ruby".freeze, "BSD-2-Clause".freeze]
end
"#;
        let json = package(spec);
        assert_eq!(
            (json.name.as_str(), json.version.as_str()),
            ("json", "2.7.1")
        );
        assert_eq!(json.licenses, ["Ruby", "BSD-2-Clause"]);
    }

    #[test]
    fn other_attributes_and_later_assignments_do_not_count() {
        let spec = b"s.name = \"a\"\ns.version = \"1\"\ns.rubygems_version = \"3.3.15\"\n\
                     s.name = \"b\"\n  s.description = \"x\\n s.name = \\\"c\\\"\"\n";
        let found = package(spec);
        assert_eq!((found.name.as_str(), found.version.as_str()), ("a", "1"));
    }

    #[test]
    fn missing_name_or_version_is_an_error() {
        assert!(parse(b"s.version = \"1\"\n").unwrap_err().contains("name"));
        assert!(parse(b"s.name = \"a\"\n").unwrap_err().contains("version"));
        assert!(parse(b"s.name = \"\"\ns.version = \"1\"\n").is_err());
        assert!(
            parse(b"s.name = rack\ns.version = \"1\"\n").is_err(),
            "not a literal"
        );
        assert!(parse(b"").is_err());
    }

    #[test]
    fn garbage_and_truncated_input_is_an_error_without_panic() {
        assert!(parse(b"\x7fELF\x02\x01\x01\0\0\0\xff\xfe").is_err());
        let truncated = &RACK[..RACK.windows(9).position(|w| w == b"s.version").unwrap()];
        assert!(parse(truncated).is_err());
        assert!(
            parse(b"s.name = \"rack\ns.version = \"1").is_err(),
            "unterminated strings"
        );
    }

    #[test]
    fn huge_input_does_not_panic() {
        let long = format!(
            "s.name = \"a\"\ns.version = \"1\"\ns.licenses = [{}]\n",
            "\"MIT\", ".repeat(20_000)
        );
        assert_eq!(package(long.as_bytes()).licenses, ["MIT"]);
        let junk = "s.x = \"".repeat(50_000);
        assert!(parse(junk.as_bytes()).is_err());
    }
}
