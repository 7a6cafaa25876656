//! Secrets (API tokens, webhook URLs) and the redaction of their text from anything shown.
//!
//! A [`Secret`] never prints its value (`Debug` shows `***`), and a [`Redactor`] replaces every
//! known secret in error messages, warnings and output tails before they leave the publishers:
//! as is, %-encoded (either case), hex (either case), and base64 or base64url at each of the
//! three alignments a secret can have inside a longer encoded value (HTTP Basic's `user:token`
//! encodes the token shifted), also when the text wraps it across lines. A Slack webhook URL is
//! itself a secret: whoever has it can post.
//!
//! [`Redactor::of_run`] knows every secret value a run holds; it is built once, with the
//! command's context, and everything a hook or a build prints passes through it before it
//! reaches a report, a comment, a summary, a message or the console.

use base64::Engine;

use crate::env::Env;
use crate::scheduler::credentials::Credentials;
use crate::scheduler::hooks::SECRET_VARS;

/// A value that must not appear in output: its `Debug` is `***` and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that sends it (a header or the webhook URL).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Replaces known secrets in text with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every form of every secret, longest first so a secret containing another is replaced whole.
    forms: Vec<Secret>,
}

/// Shorter values are not redacted: replacing 1–3 characters everywhere would garble every message
/// (GitHub's runner had that bug, actions/runner#326), and no real token is that short.
const MIN_SECRET_CHARS: usize = 4;

impl Redactor {
    /// A redactor for `secrets`.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut forms: Vec<Secret> = secrets
            .into_iter()
            .map(Secret::expose)
            .filter(|value| value.len() >= MIN_SECRET_CHARS)
            .flat_map(encodings)
            .map(Secret)
            .collect();
        forms.sort_by_key(|form| std::cmp::Reverse(form.0.len()));
        forms.dedup();
        Self { forms }
    }

    /// A redactor for every secret value this run holds: the variables of [`SECRET_VARS`]
    /// (tokens, the registry password, the Slack webhooks, their `INPUT_` forms) and the
    /// registry passwords of the Docker config file. A config that cannot be read adds nothing
    /// here; `--push` reports it.
    pub fn of_run(env: &Env) -> Self {
        let mut secrets: Vec<Secret> = SECRET_VARS
            .iter()
            .filter_map(|var| env.get(var))
            .map(Secret::new)
            .collect();
        if let Ok(credentials) = Credentials::load(env) {
            secrets.extend(credentials.passwords());
        }
        Self::new(&secrets)
    }

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let text = self
            .forms
            .iter()
            .fold(text.to_string(), |text, form| text.replace(&form.0, "***"));
        if text.contains(['\n', '\r']) {
            self.redact_wrapped(&text)
        } else {
            text
        }
    }

    /// Every line of `lines` redacted, also where a secret runs from one line into the next.
    pub fn redact_lines(&self, lines: &[String]) -> Vec<String> {
        if lines.is_empty() {
            return Vec::new();
        }
        self.redact(&lines.join("\n"))
            .split('\n')
            .map(str::to_owned)
            .collect()
    }

    /// Replaces secrets that line breaks cut in pieces: the text is searched with its line
    /// breaks removed, and each hit's whole span (breaks included) becomes `***`.
    fn redact_wrapped(&self, text: &str) -> String {
        let kept: Vec<(usize, char)> = text
            .char_indices()
            .filter(|(_, c)| !matches!(c, '\n' | '\r'))
            .collect();
        let squashed: String = kept.iter().map(|(_, c)| c).collect();
        // The byte offset in `squashed` of each kept character.
        let offsets: Vec<usize> = squashed.char_indices().map(|(at, _)| at).collect();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for form in &self.forms {
            for (at, found) in squashed.match_indices(&form.0) {
                let first = offsets.partition_point(|o| *o < at);
                let last = offsets.partition_point(|o| *o < at + found.len()) - 1;
                let (end_at, end_char) = kept[last];
                spans.push((kept[first].0, end_at + end_char.len_utf8()));
            }
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for (start, end) in spans {
            if start >= done {
                out.push_str(&text[done..start]);
                out.push_str("***");
                done = end;
            } else if end > done {
                done = end;
            }
        }
        out.push_str(&text[done..]);
        out
    }
}

/// The secret as it may appear in a message: as is, percent-encoded and hex (either case), and
/// base64 and base64url at every alignment.
fn encodings(value: &str) -> Vec<String> {
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        value.to_string(),
        percent_encode(value),
        percent_encode(value).replace_hex_case(),
        hex.to_ascii_uppercase(),
        hex,
    ];
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        forms.extend((0..3).map(|shift| aligned_base64(engine, value.as_bytes(), shift)));
    }
    // The whole value encoded on its own, padding included, so no tail of it is left behind.
    forms.push(base64::engine::general_purpose::STANDARD.encode(value));
    forms.push(base64::engine::general_purpose::URL_SAFE.encode(value));
    forms.retain(|form| form.len() >= MIN_SECRET_CHARS);
    forms
}

/// The base64 characters that depend only on `value` when it starts `shift` bytes into the
/// encoded data: whatever surrounds it, these appear in the encoding.
fn aligned_base64(engine: &impl Engine, value: &[u8], shift: usize) -> String {
    let mut data = vec![0u8; shift];
    data.extend_from_slice(value);
    let encoded = engine.encode(&data);
    let start = (8 * shift).div_ceil(6);
    let end = (8 * (shift + value.len())) / 6;
    encoded.get(start..end).unwrap_or_default().to_string()
}

trait HexCase {
    fn replace_hex_case(&self) -> String;
}

impl HexCase for String {
    /// `%2F` → `%2f`: the escapes' hex digits in lower case, the rest unchanged.
    fn replace_hex_case(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut escape_left = 0;
        for c in self.chars() {
            if c == '%' {
                escape_left = 2;
                out.push(c);
            } else if escape_left > 0 {
                escape_left -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("ghp_CANARY")), "Secret(***)");
    }

    #[test]
    fn every_form_of_a_secret_is_replaced() {
        let hook = Secret::new("https://hooks.slack.com/services/T0/B0/CANARY");
        let token = Secret::new("ghp_CANARY123");
        let redactor = Redactor::new([&hook, &token, &Secret::new("ab")]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(token.expose());
        let text = format!(
            "a {} b {} c {b64} d ab",
            hook.expose(),
            percent_encode(hook.expose())
        );
        let redacted = redactor.redact(&text);
        assert_eq!(redacted, "a *** b *** c *** d ab");
    }

    fn canary_forms(secret: &str) -> Vec<String> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        let mut forms = vec![
            "ghp_Canary%2f%2b%3f~Value-0123456789".to_string(),
            hex.to_uppercase(),
            hex,
        ];
        for prefix in ["", "u:", "us:", "use:"] {
            forms.push(STANDARD.encode(format!("{prefix}{secret}")));
            forms.push(URL_SAFE.encode(format!("{prefix}{secret}?>")));
        }
        forms
    }

    #[test]
    fn encoded_forms_at_any_alignment_are_replaced() {
        let secret = "ghp_Canary/+?~Value-0123456789";
        let redactor = Redactor::new([&Secret::new(secret)]);
        for form in canary_forms(secret) {
            let redacted = redactor.redact(&format!("Authorization: Basic {form}"));
            assert!(redacted.contains("***"), "{form} -> {redacted}");
            assert!(redacted.len() < form.len() + 24, "{form} -> {redacted}");
        }
    }

    #[test]
    fn a_secret_split_across_lines_is_replaced() {
        let secret = "ghp_CANARY0123456789";
        let redactor = Redactor::new([&Secret::new(secret)]);
        let lines = vec![
            "token: ghp_CANA".to_string(),
            "RY0123456789 end".to_string(),
            "next".to_string(),
        ];
        let redacted = redactor.redact_lines(&lines);
        assert_eq!(redacted, ["token: *** end", "next"]);
        let wrapped = redactor.redact("ghp_CAN\r\nARY0123456789");
        assert_eq!(wrapped, "***");
    }
}
