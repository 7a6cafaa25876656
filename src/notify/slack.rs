//! Slack: posts the rendered message to an incoming webhook, when the run is one the settings
//! want to hear about.
//!
//! The webhook URL is the secret (whoever has it can post), so it never appears in errors: the
//! call is named "post to the Slack webhook". A post is not repeated after a 5xx or a timeout
//! (Slack may have shown it already); a 429 is waited out as its `retry-after` says.

use serde_json::Value;

use super::http::{Call, HttpClient, HttpError};
use super::secret::Secret;
use crate::report::model::{ImageResult, RunReport};
use crate::settings::notify::SlackOn;

/// Whether a run deserves a message: `always`; on `failure` when an image failed or the run was
/// interrupted; on `change` when something was built or failed.
pub fn wanted(on: SlackOn, report: &RunReport) -> bool {
    let failed = report.count(ImageResult::Failed) > 0 || report.run.interrupted;
    match on {
        SlackOn::Always => true,
        SlackOn::Failure => failed,
        SlackOn::Change => failed || report.count(ImageResult::Built) > 0,
    }
}

/// Posts `message` (the output of `report::slack::slack`) to `webhook`.
pub fn post(http: &HttpClient, webhook: &Secret, message: &Value) -> Result<(), HttpError> {
    let call = Call::post(webhook.expose(), "post to the Slack webhook").json(message);
    http.send(&call).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::http::tests::fast_client;
    use crate::notify::testserver::{FakeServer, Reply};
    use crate::report::fixtures;

    #[test]
    fn the_body_is_the_rendered_message() {
        let server = FakeServer::scripted(vec![Reply::text(200, "ok")]);
        let webhook = Secret::new(format!("{}/services/T0/B0/CANARY", server.url()));
        let (http, _) = fast_client(&[&webhook]);
        let message = crate::report::slack::slack(&fixtures::report(), Some("https://ci/run/1"));
        post(&http, &webhook, &message).expect("posted");
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].line(), "POST /services/T0/B0/CANARY");
        assert_eq!(requests[0].header("content-type"), Some("application/json"));
        assert_eq!(requests[0].json(), message);
    }

    #[test]
    fn a_rejected_post_names_no_url_and_is_not_repeated() {
        let server = FakeServer::scripted(vec![Reply::text(500, "invalid_blocks")]);
        let webhook = Secret::new(format!("{}/services/T0/B0/CANARY", server.url()));
        let (http, _) = fast_client(&[&webhook]);
        let err = post(&http, &webhook, &serde_json::json!({"text": "x"})).expect_err("500");
        assert_eq!(
            err.to_string(),
            "post to the Slack webhook: HTTP 500: invalid_blocks"
        );
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn the_event_decides_whether_to_post() {
        let mut report = fixtures::report();
        assert!(report.count(ImageResult::Failed) > 0);
        assert!(wanted(SlackOn::Failure, &report));
        for image in &mut report.images {
            if image.result == ImageResult::Failed {
                image.result = ImageResult::Built;
            }
        }
        assert!(!wanted(SlackOn::Failure, &report));
        assert!(wanted(SlackOn::Change, &report));
        for image in &mut report.images {
            image.result = ImageResult::Reused;
        }
        assert!(!wanted(SlackOn::Change, &report));
        assert!(wanted(SlackOn::Always, &report));
        report.run.interrupted = true;
        assert!(wanted(SlackOn::Failure, &report));
    }
}
