//! Secrets (API tokens, webhook URLs) and the redaction of their text from anything shown.
//!
//! A [`Secret`] never prints its value (`Debug` shows `***`), and a [`Redactor`] replaces every
//! known secret, also URL-encoded or base64-encoded, in error messages and warnings before they
//! leave the publishers. A Slack webhook URL is itself a secret: whoever has it can post.

use base64::Engine;

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

    /// `text` with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.forms
            .iter()
            .fold(text.to_string(), |text, form| text.replace(&form.0, "***"))
    }
}

/// The secret as it may appear in a message: as is, percent-encoded, and base64 (padded or not).
fn encodings(value: &str) -> Vec<String> {
    let base64 = base64::engine::general_purpose::STANDARD.encode(value);
    vec![
        value.to_string(),
        percent_encode(value),
        base64.trim_end_matches('=').to_string(),
        base64,
    ]
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
}
