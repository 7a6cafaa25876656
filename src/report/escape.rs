//! Escaping of untrusted text (file names, branch names, image names, build output) for each
//! place a renderer puts it: GitHub Markdown text, code spans and fences, GitHub workflow-command
//! data and properties, Slack mrkdwn, and the console (a terminal or a GitHub Actions log). XML
//! escaping belongs to the JUnit writer.
//!
//! The rule every function keeps: whatever the input, the output cannot end the construct it is
//! placed in, start a new one, fire a workflow command or notify anyone. Shorten text with
//! [`shorten`] *before* escaping it, so a cut never splits an escape sequence.

/// A zero-width space as an HTML entity: placed after `@` and `#` it stops GitHub from turning
/// `@user`, `@org/team` and `#123` into mentions and cross-links (Renovate's `sanitizeMarkdown`).
const ZERO_WIDTH_SPACE: &str = "&#8203;";

/// The characters that start Markdown syntax inline or at the start of a line.
const MARKDOWN_PUNCTUATION: &[char] =
    &['\\', '`', '*', '_', '[', ']', '(', ')', '#', '!', '|', '~'];

/// Text for a Markdown paragraph, list item, heading or table cell, shown as typed.
///
/// Markdown punctuation is backslash-escaped, `&`, `<` and `>` become entities (no HTML, no
/// comment markers), line breaks and other control characters become spaces (so nothing can
/// start a heading, list or quote, or end a table row), and mentions and issue references are
/// broken with a zero-width space.
pub fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => {
                out.push('@');
                out.push_str(ZERO_WIDTH_SPACE);
            }
            '#' => {
                out.push_str("\\#");
                out.push_str(ZERO_WIDTH_SPACE);
            }
            c if MARKDOWN_PUNCTUATION.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An inline code span holding `text` on one line.
///
/// The delimiter is one backtick longer than the longest run inside, so the content cannot close
/// it; line breaks become spaces. Not for table cells: GitHub splits cells on `|` even inside
/// code, so tables use [`markdown_text`].
pub fn code_span(text: &str) -> String {
    let text: String = visible_controls(&text.replace("\r\n", " ").replace(['\r', '\n'], " "));
    let text = break_comment_openers(&text);
    if text.is_empty() {
        return "` `".into();
    }
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    // A span that starts or ends with a backtick needs a space to separate it from the fence;
    // one space on each side is stripped again by the renderer.
    let pad = text.starts_with(['`', ' ']) || text.ends_with(['`', ' ']);
    let pad = if pad { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// A fenced code block holding `text` verbatim, ending with a newline.
///
/// The fence is longer than any backtick run in the text (at least three), so no line inside
/// can close it; `\r\n` and lone `\r` become line breaks and other control characters become
/// visible symbols. HTML comment openers are broken so the block can never carry a
/// sticky-comment marker.
pub fn code_block(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = break_comment_openers(&visible_controls(&text));
    let fence = "`".repeat((longest_backtick_run(&text) + 1).max(3));
    let newline = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{fence}text\n{text}{newline}{fence}\n")
}

/// The message of a GitHub workflow command (`::error ...::MESSAGE`): `%`, `\r` and `\n` are
/// percent-encoded, as actions/toolkit's `escapeData` does, so the whole command stays on one
/// line and nothing in it can start another command.
pub fn workflow_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A property value of a GitHub workflow command (`file=VALUE,title=VALUE`): like
/// [`workflow_data`] plus `:` and `,`, which would end the value (toolkit's `escapeProperty`).
pub fn workflow_property(text: &str) -> String {
    workflow_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Text for Slack mrkdwn: `&`, `<` and `>` become entities, as Slack requires, so the text
/// cannot form a link (`<url|label>`) or a mention (`<!channel>`, `<@U123>`); Slack only notifies
/// through those forms.
pub fn slack_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` safe as HTML text or a double- or single-quoted attribute value: `& < > " '` as
/// character references, control characters made visible (see [`visible_controls`]).
pub fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in visible_controls(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The longest name (image, tag, store entry, file path, ref) [`console_name`] prints in full.
pub const CONSOLE_NAME_CHARS: usize = 300;

/// The longest free text (a message, a build log line) [`console_line`] prints in full.
pub const CONSOLE_LINE_CHARS: usize = 2000;

/// A name from a repository, a config or a store, for the console: see [`console`].
pub fn console_name(text: &str) -> String {
    console(text, CONSOLE_NAME_CHARS)
}

/// Free text that holds such names (a message, a build log line), for the console: see
/// [`console`].
pub fn console_line(text: &str) -> String {
    console(text, CONSOLE_LINE_CHARS)
}

/// `text` as one inert piece of a console line, for a terminal and for a GitHub Actions log alike.
///
/// Line breaks, tabs and every other C0 control and DEL become `\n`, `\r`, `\t`, `\xHH`; C1
/// controls, line and paragraph separators and bidirectional overrides become `\u{HH}`. So no
/// escape sequence (ESC, 8-bit CSI/OSC) reaches the terminal, and the text cannot end its line.
/// The runner trims a line before it looks for `::`, so a leading `:` (after spaces) becomes
/// `\x3a`: text placed at the start of a line cannot start a workflow command either. The runner
/// also still runs the legacy form `##[command]` found anywhere in a line (actions/runner
/// `ActionCommand.TryParse`), so the `[` of `##[` becomes `\x5b`. Text longer
/// than `max_chars` is cut there and says how long it was (`… (N bytes)`), so a 1 GiB name from
/// an archive prints as a few hundred characters. Backslashes stay as they are, so the visible
/// form of a control cannot be told from the same characters typed; that is harmless here.
pub fn console(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars) + 8);
    let mut at_start = true;
    for (taken, c) in text.chars().enumerate() {
        if taken == max_chars {
            out.push_str(&format!("… ({} bytes)", text.len()));
            break;
        }
        if at_start && c == ':' {
            out.push_str("\\x3a");
            at_start = false;
            continue;
        }
        at_start &= c == ' ' || (c.is_whitespace() && !c.is_control());
        if c == '[' && out.ends_with("##") {
            out.push_str("\\x5b");
            continue;
        }
        push_console_char(&mut out, c);
    }
    out
}

fn push_console_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0}'..='\u{1f}' | '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() || is_invisible_layout(c) => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
        c => out.push(c),
    }
}

/// Line and paragraph separators and the bidirectional embeddings, overrides and isolates: they
/// break or reorder a line without being seen ("Trojan Source").
fn is_invisible_layout(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// JSON text (as serde_json writes it) with DEL, C1 controls, line and paragraph separators,
/// bidirectional controls and the `[` of `##[` written as `\uXXXX` escapes: the same JSON value,
/// but nothing in it acts on a terminal or runs as a legacy workflow command. serde_json escapes
/// only C0 controls; these characters (and `#`) can only stand inside strings, where the escape
/// means the same character.
pub fn console_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        let legacy_command = c == '[' && out.ends_with("##");
        if legacy_command
            || c == '\u{7f}'
            || c.is_control() && c > '\u{7f}'
            || is_invisible_layout(c)
        {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` cut to at most `max` characters, the last of them `…` when it was cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    if max > 0 {
        out.push('…');
    }
    out
}

/// Control characters other than tab and line feed shown as their Unicode control pictures
/// (`␛[31m` for an ANSI colour code): invisible characters in a report hide what a line says.
pub fn visible_controls(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' => c,
            '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
            '\u{7f}' => '\u{2421}',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// `<!--` with a zero-width joiner inside: renders the same, but is no HTML comment and so no
/// sticky-comment marker.
fn break_comment_openers(text: &str) -> String {
    text.replace("<!--", "<!-\u{200d}-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::HOSTILE;

    #[test]
    fn html_text_escapes_markup_quotes_and_controls() {
        assert_eq!(
            html_text("<a href='x'>\"&amp;\"</a>\u{1b}[0m"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;amp;&quot;&lt;/a&gt;\u{241b}[0m"
        );
    }

    #[test]
    fn markdown_text_escapes_every_punctuation_mark_and_html() {
        insta::assert_snapshot!(markdown_text(r"\ * _ [ ] ( ) # < > ! | ~ ` & plain"), @r"\\ \* \_ \[ \] \( \) \#&#8203; &lt; &gt; \! \| \~ \` &amp; plain");
    }

    #[test]
    fn markdown_text_breaks_mentions_and_issue_references() {
        let text = markdown_text("ping @channel @org/team and #123");
        assert_eq!(
            text,
            "ping @&#8203;channel @&#8203;org/team and \\#&#8203;123"
        );
        assert!(!text.contains("@c") && !text.contains("@o"));
    }

    #[test]
    fn markdown_text_stays_on_one_line() {
        let text = markdown_text("a\r\n# heading\n> quote\u{1b}[31m");
        assert!(!text.contains(['\n', '\r', '\u{1b}']), "{text}");
        assert!(text.starts_with("a  \\#"), "{text}");
    }

    #[test]
    fn markdown_text_of_hostile_input_has_no_raw_html_or_links() {
        let text = markdown_text(HOSTILE);
        for needle in ["<", "](", "@channel", "@org", "#123", "<!--", "\n", "\r"] {
            assert!(!text.contains(needle), "{needle} in {text}");
        }
    }

    #[test]
    fn code_span_uses_a_longer_delimiter_than_any_backtick_run() {
        assert_eq!(code_span("RUN make"), "`RUN make`");
        assert_eq!(code_span("a `b` c"), "``a `b` c``");
        assert_eq!(code_span("```x"), "```` ```x ````");
        assert_eq!(code_span("x`"), "`` x` ``");
        assert_eq!(code_span(""), "` `");
    }

    #[test]
    fn code_span_joins_lines_and_breaks_comment_markers() {
        let span = code_span("a\nb\r\nc <!-- buildopt:x -->");
        assert_eq!(span, "`a b c <!-\u{200d}- buildopt:x -->`");
    }

    #[test]
    fn code_block_fence_is_longer_than_any_run_inside() {
        assert_eq!(code_block("plain"), "```text\nplain\n```\n");
        let block = code_block("a\n`````\nb\n");
        assert_eq!(block, "``````text\na\n`````\nb\n``````\n");
    }

    #[test]
    fn code_block_content_cannot_close_it() {
        for run in 0..10 {
            let content = format!("{}\n{HOSTILE}\n{}", "`".repeat(run), "`".repeat(run));
            let block = code_block(&content);
            let fence = block.lines().last().expect("closing fence");
            let closers = block.lines().skip(1).filter(|line| {
                line.trim().starts_with(fence) && line.trim().trim_matches('`').is_empty()
            });
            assert_eq!(closers.count(), 1, "{block}");
        }
    }

    #[test]
    fn code_block_normalises_line_breaks_and_shows_controls() {
        assert_eq!(
            code_block("a\r\nb\rc\u{1b}[0m\u{0}"),
            "```text\na\nb\nc\u{241b}[0m\u{2400}\n```\n"
        );
    }

    #[test]
    fn workflow_data_keeps_a_command_on_one_line() {
        assert_eq!(workflow_data("50%\r\n::error::x"), "50%25%0D%0A::error::x");
        assert_eq!(workflow_data("%0A"), "%250A");
    }

    #[test]
    fn workflow_property_also_escapes_colon_and_comma() {
        assert_eq!(workflow_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn slack_text_escapes_the_three_control_characters() {
        assert_eq!(
            slack_text("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
    }

    #[test]
    fn console_makes_controls_visible_and_keeps_the_text_on_one_line() {
        assert_eq!(
            console_name("a\n::error title=x::y\r\t\u{1b}]0;t\u{7}\u{7f}\u{9b}31m\u{202e}"),
            "a\\n::error title=x::y\\r\\t\\x1b]0;t\\x07\\x7f\\u{9b}31m\\u{202e}"
        );
        assert_eq!(
            console_name("registry:5000/api:v1 ok"),
            "registry:5000/api:v1 ok"
        );
    }

    #[test]
    fn console_text_cannot_start_a_workflow_command_at_the_start_of_a_line() {
        assert_eq!(console_name("::error::x"), "\\x3a:error::x");
        assert_eq!(
            console_name("  \u{a0}::add-mask::x"),
            "  \u{a0}\\x3a:add-mask::x"
        );
        assert_eq!(console_name("x ##[add-mask]s"), "x ##\\x5badd-mask]s");
        for text in [
            HOSTILE,
            "::stop-commands::t",
            " \r::x",
            "\u{85}::x",
            "a ##[error]x",
        ] {
            let line = format!("       {}", console_line(text));
            assert!(!line.trim().starts_with("::"), "{line}");
            assert!(!line.contains(['\n', '\r', '\u{85}']), "{line}");
            assert!(!line.contains("##["), "{line}");
        }
    }

    #[test]
    fn console_cuts_long_text_and_says_how_long_it_was() {
        let long = "x".repeat(1 << 20);
        let name = console_name(&long);
        assert_eq!(
            name,
            format!("{}… (1048576 bytes)", "x".repeat(CONSOLE_NAME_CHARS))
        );
        assert_eq!(console_name(&"y".repeat(300)), "y".repeat(300));
    }

    #[test]
    fn console_json_is_the_same_json_without_terminal_controls() {
        let value =
            serde_json::json!({"name": "a\u{7f}\u{9b}\u{2028}\u{1b}é ##[error]x", "l": [1]});
        let json = console_json(&serde_json::to_string(&value).expect("json"));
        assert!(!json.contains("##["), "{json}");
        assert!(
            !json.contains(['\u{7f}', '\u{9b}', '\u{2028}', '\u{1b}']),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).expect("valid");
        assert_eq!(back, value);
    }

    #[test]
    fn shorten_counts_characters_and_marks_the_cut() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten("ééé", 2), "é…");
        assert_eq!(shorten("abc", 0), "");
    }
}
