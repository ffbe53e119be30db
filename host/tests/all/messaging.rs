//! Slack, Teams and SMS connectors against a real HTTP receiver on 127.0.0.1, configured
//! in roster.toml with their secrets in a secrets file (or the environment).

use std::sync::Arc;

use roster_host::config::HostConfig;
use roster_host::net::HttpClient;
use roster_host::store::OutboxEntry;

use crate::connector::Connector;

fn entry(channel: &str, recipients: &[&str], subject: Option<&str>, body: &str) -> OutboxEntry {
    OutboxEntry {
        id: format!("n-{channel}"),
        worker: "roster.deal-stage-notifier".into(),
        channel: channel.into(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        subject: subject.map(str::to_string),
        body: body.into(),
    }
}

fn write_secrets(dir: &std::path::Path, text: &str) {
    let path = dir.join("secrets.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn notifications_reach_slack_teams_and_sms_through_their_connectors() {
    let receiver = Connector::start();
    let dir = tempfile::tempdir().unwrap();
    write_secrets(
        dir.path(),
        &format!(
            "slack-deals = \"{}\"\nslack-any = \"{}\"\nteams-sales = \"{}\"\nsms-key = \"sk-sms-123\"\n",
            receiver.url("/status/200/slack-deals"),
            receiver.url("/status/200/slack-any"),
            receiver.url("/status/200/teams")
        ),
    );
    let config_text = format!(
        r##"data-dir = "data"
secrets-file = "secrets.toml"

[[connectors.slack]]
channel = "#deals"
url-secret = "slack-deals"

[[connectors.slack]]
channel = "*"
url-secret = "slack-any"

[[connectors.teams]]
channel = "*"
url-secret = "teams-sales"

[connectors.sms]
url = "{}"
format = "form"
from = "+15550100"
auth = "header"
header = "X-Api-Key"
key-secret = "sms-key"
[connectors.sms.fields]
to = "To"
from = "From"
body = "Body"
"##,
        receiver.url("/status/200/sms")
    );
    let path = dir.path().join("roster.toml");
    std::fs::write(&path, &config_text).unwrap();
    let config = HostConfig::load(&path).unwrap();
    assert!(
        !format!("{config:?}").contains("sk-sms-123"),
        "secrets never reach a debug print"
    );
    let connectors = config.connectors(
        Arc::new(HttpClient::new().unwrap()),
        Arc::new(config.directory.clone()),
    );
    for channel in ["slack", "teams", "sms", "email", "webhook"] {
        assert_eq!(connectors.handles(channel), channel != "email", "{channel}");
    }

    let slack = connectors
        .deliver(&entry(
            "slack",
            &["#deals", "#general"],
            Some("Deal stage changed"),
            "Acme moved to negotiation",
        ))
        .unwrap();
    assert_eq!(slack, "posted to #deals, #general on slack");
    let deals = receiver.received_on("/status/200/slack-deals");
    assert_eq!(deals.len(), 1);
    let posted: serde_json::Value = serde_json::from_str(&deals[0].body).unwrap();
    assert_eq!(
        posted["text"],
        "*Deal stage changed*\nAcme moved to negotiation"
    );
    assert_eq!(deals[0].key.as_deref(), Some("n-slack/#deals"));
    assert_eq!(receiver.received_on("/status/200/slack-any").len(), 1);

    connectors
        .deliver(&entry(
            "teams",
            &["Sales"],
            Some("Quota milestone"),
            "Ann hit 104%",
        ))
        .unwrap();
    let teams = receiver.received_on("/status/200/teams");
    let card: serde_json::Value = serde_json::from_str(&teams[0].body).unwrap();
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["title"], "Quota milestone");
    assert_eq!(card["text"], "Ann hit 104%");

    connectors
        .deliver(&entry(
            "sms",
            &["+447700900123"],
            None,
            "Your renewal is due",
        ))
        .unwrap();
    let sms = receiver.received_on("/status/200/sms");
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].headers["x-api-key"], "sk-sms-123");
    assert_eq!(
        sms[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        sms[0].body,
        "Body=Your+renewal+is+due&From=%2B15550100&To=%2B447700900123"
    );
    let bad = connectors
        .deliver(&entry("sms", &["07700 900123"], None, "x"))
        .unwrap_err();
    assert!(bad.contains("E.164"), "{bad}");

    // A provider that answers an error is a failed delivery (retried by the deliverer).
    let failing = config_text.replace("/status/200/sms", "/status/503/sms");
    std::fs::write(&path, failing).unwrap();
    let config = HostConfig::load(&path).unwrap();
    let connectors = config.connectors(
        Arc::new(HttpClient::new().unwrap()),
        Arc::new(config.directory.clone()),
    );
    let err = connectors
        .deliver(&entry("sms", &["+447700900123"], None, "x"))
        .unwrap_err();
    assert!(err.contains("answered 503"), "{err}");

    // Bad configuration is refused whole, naming each problem.
    for (change, expected) in [
        (
            (
                "url-secret = \"slack-any\"",
                "url-env = \"ROSTER_TEST_UNSET_WEBHOOK\"",
            ),
            "environment variable `ROSTER_TEST_UNSET_WEBHOOK` is not set",
        ),
        (
            ("header = \"X-Api-Key\"\n", ""),
            "auth = \"header\" needs `header`",
        ),
        (
            ("key-secret = \"sms-key\"", "key-secret = \"nope\""),
            "secret `nope` is not in",
        ),
    ] {
        std::fs::write(&path, config_text.replace(change.0, change.1)).unwrap();
        let err = HostConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}
