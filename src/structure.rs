//! The module structure, checked against the source tree: commands are glue over the library
//! and never import each other, and the library never imports a command.
//!
//! Every path in the code (in `use` items and inline, brace groups expanded, whitespace,
//! comments and literals ignored) that starts at `crate`, `super`, `self` or `buildopt` is resolved to the
//! module it names. A file under `src/commands/` other than `mod.rs` may name no command module
//! but its own; a file outside `src/commands/` (but `main.rs`, which calls the dispatcher) may not
//! name `commands` at all.

use std::path::{Path, PathBuf};

/// A path one file names, resolved from the crate root (`["commands", "build", "run"]`).
type Resolved = Vec<String>;

/// Everything wrong with the tree under `src`, one line each.
fn violations(src: &Path) -> Vec<String> {
    let commands = command_modules(&src.join("commands"));
    let mut found = Vec::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let module = module_of(relative);
        if module == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (path, why) in file_violations(&module, &text, &commands) {
            found.push(format!("src/{}: {path} ({why})", relative.display()));
        }
    }
    found
}

/// The paths the file of `module` holding `text` may not name, each with why.
fn file_violations(
    module: &[String],
    text: &str,
    commands: &[String],
) -> Vec<(String, &'static str)> {
    let code = compact(&strip(text));
    let inline = inline_modules(&code);
    let mut found = Vec::new();
    for (at, path) in paths(&code) {
        let mut module = module.to_vec();
        module.extend(enclosing(&inline, at));
        let why = resolve(&module, &path).and_then(|named| violation(&module, &named, commands));
        found.extend(why.map(|why| (path.join("::"), why)));
    }
    found
}

/// Why `module` may not name `named`, if it may not.
fn violation(module: &[String], named: &[String], commands: &[String]) -> Option<&'static str> {
    if named.first().map(String::as_str) != Some("commands") {
        return None;
    }
    let in_commands = module.first().map(String::as_str) == Some("commands");
    if !in_commands {
        return Some("a library module names `commands`");
    }
    let Some(own) = module.get(1) else {
        return None; // commands/mod.rs dispatches to every command
    };
    match named.get(1) {
        // `commands` itself or all of it: every command comes with it.
        None => Some("a command names the commands module"),
        Some(item) if item == "*" => Some("a command imports every command"),
        Some(item) if item != own && commands.contains(item) => {
            Some("a command names another command")
        }
        Some(_) => None,
    }
}

/// The command modules: each `src/commands/<name>.rs` and `src/commands/<name>/` but `mod.rs`.
fn command_modules(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("src/commands")
        .map(|entry| entry.expect("entry").path())
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?.to_string();
            let module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
            (module && stem != "mod").then_some(stem)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The module a file under `src` defines: `commands/build.rs` → `[commands, build]`,
/// `run/mod.rs` → `[run]`, `lib.rs` → `[]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib") {
        parts.push(stem.to_string());
    }
    parts
}

/// `path` (as written in `module`) from the crate root; `None` for paths into other crates.
fn resolve(module: &[String], path: &[String]) -> Option<Resolved> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate" | "buildopt") => rest = &path[1..],
        Some("self") => {
            base = module.to_vec();
            rest = &path[1..];
        }
        Some("super") => {
            base = module.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// An inline `mod name { … }`: its name and where its body starts and ends in the code.
struct InlineModule {
    name: String,
    body: std::ops::Range<usize>,
}

/// The inline modules of `code` (compacted, see [`compact`]).
fn inline_modules(code: &str) -> Vec<InlineModule> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("mod ").map(|i| i + from) {
        from = at + 4;
        if at > 0 && is_ident(bytes[at - 1]) {
            continue;
        }
        let name_len = bytes[from..].iter().take_while(|&&b| is_ident(b)).count();
        let open = from + name_len;
        if name_len == 0 || bytes.get(open) != Some(&b'{') {
            continue;
        }
        let mut depth = 0usize;
        let close = (open..bytes.len()).find(|&i| {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        found.push(InlineModule {
            name: code[from..open].to_string(),
            body: open..close.unwrap_or(bytes.len()),
        });
    }
    found
}

/// The names of the inline modules around position `at`, outermost first.
fn enclosing(inline: &[InlineModule], at: usize) -> Vec<String> {
    inline
        .iter()
        .filter(|m| m.body.contains(&at))
        .map(|m| m.name.clone())
        .collect()
}

/// Every path starting at `crate`, `super`, `self` or `buildopt` in `code` (compacted, see
/// [`compact`]) with where it starts, each brace group expanded into one path per item.
fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let compact = code;
    let bytes = compact.as_bytes();
    let mut found = Vec::new();
    for root in ["crate::", "super::", "self::", "buildopt::"] {
        let mut from = 0;
        while let Some(at) = compact[from..].find(root).map(|i| i + from) {
            from = at + root.len();
            let boundary = at == 0 || !is_ident(bytes[at - 1]) && bytes[at - 1] != b':';
            if boundary {
                let head = vec![root.trim_end_matches(':').to_string()];
                let mut tails_found = Vec::new();
                tails(&compact[from..], head, &mut tails_found);
                found.extend(tails_found.into_iter().map(|path| (at, path)));
            }
        }
    }
    found
}

/// `code` with the whitespace next to `:`, `{`, `}` and `,` removed and every other run of it
/// made one space: a path spread over lines reads as one, and words stay apart.
fn compact(code: &str) -> String {
    let sticky = |c: char| matches!(c, ':' | '{' | '}' | ',');
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_whitespace() {
            out.push(c);
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let after = chars.peek().copied();
        if !out.ends_with(sticky) && !after.is_some_and(sticky) {
            out.push(' ');
        }
    }
    out
}

/// Appends to `found` the paths `prefix` continues into at the start of `text` (right after a
/// `::`).
fn tails(text: &str, prefix: Vec<String>, found: &mut Vec<Vec<String>>) {
    if let Some(group) = text.strip_prefix('{') {
        for item in split_group(group) {
            tails(item, prefix.clone(), found);
        }
        return;
    }
    let end = text
        .bytes()
        .position(|b| !is_ident(b) && b != b'*')
        .unwrap_or(text.len());
    let mut path = prefix;
    if end == 0 {
        found.push(path);
        return;
    }
    path.push(text[..end].to_string());
    match text[end..].strip_prefix("::") {
        Some(more) if more.starts_with(|c: char| c == '{' || c == '*' || is_ident(c as u8)) => {
            tails(more, path, found);
        }
        _ => found.push(path),
    }
}

/// The top-level items of a brace group whose `{` was just read, up to its `}`.
fn split_group(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().filter(|item| !item.is_empty()).collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `text` with comments, string and character literals blanked (their bytes made spaces), so
/// prose about a module never counts as naming it.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        let skipped = match (chars[i], next) {
            ('/', Some('/')) => line_end(&chars, i),
            ('/', Some('*')) => block_end(&chars, i),
            ('r', Some('"' | '#')) if i == 0 || !is_ident(chars[i - 1] as u8) => {
                raw_string_end(&chars, i)
            }
            ('"', _) => string_end(&chars, i),
            ('\'', _) => char_end(&chars, i),
            _ => None,
        };
        match skipped {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - i));
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

fn line_end(chars: &[char], from: usize) -> Option<usize> {
    let len = chars[from..].iter().position(|&c| c == '\n');
    Some(len.map_or(chars.len(), |len| from + len))
}

fn block_end(chars: &[char], from: usize) -> Option<usize> {
    let (mut depth, mut i) = (0usize, from);
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    Some(chars.len())
}

fn string_end(chars: &[char], from: usize) -> Option<usize> {
    let mut i = from + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    Some(chars.len())
}

fn raw_string_end(chars: &[char], from: usize) -> Option<usize> {
    let hashes = chars[from + 1..].iter().take_while(|&&c| c == '#').count();
    let open = from + 1 + hashes;
    if chars.get(open) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let end = (open + 1..=chars.len().saturating_sub(close.len()))
        .find(|&i| chars[i..i + close.len()] == close[..]);
    Some(end.map_or(chars.len(), |end| end + close.len()))
}

/// A character literal (`'a'`, `'\n'`, `'\''`); a lifetime is left alone.
fn char_end(chars: &[char], from: usize) -> Option<usize> {
    match (chars.get(from + 1), chars.get(from + 2)) {
        (Some('\\'), _) => {
            let close = chars[from + 2..].iter().position(|&c| c == '\'')?;
            Some(from + 2 + close + 1)
        }
        (Some(_), Some('\'')) => Some(from + 3),
        _ => None,
    }
}

#[test]
fn commands_are_glue_that_never_import_each_other_and_the_library_never_imports_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(found.is_empty(), "module structure:\n{}", found.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// What a file in `module` holding `code` names that it may not.
    fn flagged(module: &[&str], code: &str) -> Vec<String> {
        let commands = strings(&["benchmark", "build", "cache", "ci", "notify", "plan"]);
        let found = file_violations(&strings(module), code, &commands);
        found.into_iter().map(|(path, _)| path).collect()
    }

    #[test]
    fn a_command_naming_another_is_caught_in_every_spelling() {
        let build = ["commands", "build"];
        // The imports this check was written against.
        assert_eq!(
            flagged(
                &build,
                "use super::{Context, build_cache, plan::plan_with_workspace, write_stdout};"
            ),
            ["super::plan::plan_with_workspace"]
        );
        assert_eq!(
            flagged(&build, "return super::benchmark::run(ctx, args);"),
            ["super::benchmark::run"]
        );
        assert_eq!(
            flagged(
                &build,
                "use crate::commands::{\n    cache,\n    Context,\n};"
            ),
            ["crate::commands::cache"]
        );
        assert_eq!(flagged(&build, "use super :: ci ;"), ["super::ci"]);
        assert_eq!(flagged(&build, "use super::*;"), ["super::*"]);
        assert!(flagged(&build, "mod tests {\n    use super::*;\n}\n").is_empty());
        assert_eq!(
            flagged(
                &build,
                "mod tests { use super::super::ci; }\nuse super::plan;"
            ),
            ["super::super::ci", "super::plan"]
        );
        assert_eq!(
            flagged(&build, "use crate::commands as c;"),
            ["crate::commands"]
        );
        let nested = ["commands", "notify", "tests"];
        assert_eq!(
            flagged(&nested, "use super::super::ci::run;"),
            ["super::super::ci::run"]
        );
    }

    #[test]
    fn a_library_module_naming_a_command_is_caught() {
        assert_eq!(
            flagged(
                &["error"],
                "use crate::commands::benchmark::BenchmarkError;"
            ),
            ["crate::commands::benchmark::BenchmarkError"]
        );
        assert_eq!(
            flagged(&["run", "cache"], "use super::super::commands::Context;"),
            ["super::super::commands::Context"]
        );
        assert_eq!(
            flagged(&[], "fn f() { self::commands::run(cli, env); }"),
            ["self::commands::run"]
        );
    }

    #[test]
    fn what_a_command_may_name_is_not_flagged() {
        let build = ["commands", "build"];
        let allowed = "use super::Context;\nuse crate::run::plan::{PlanRequest, plan_with_workspace};\n\
            use self::helpers;\nlet x = super::build::local();\n\
            // super::plan::make_plan in a comment\n\
            /* crate::commands::ci in /* a nested */ block */\n\
            let s = \"super::cache::run\"; let r = r#\"crate::commands::ci\"#; let c = '\"';\n\
            fn f<'a>(x: &'a str) {}";
        assert!(
            flagged(&build, allowed).is_empty(),
            "{:?}",
            flagged(&build, allowed)
        );
        // The dispatcher names every command.
        assert!(flagged(&["commands"], "Command::Ci(a) => self::ci::run(&ctx, a),").is_empty());
    }
}
