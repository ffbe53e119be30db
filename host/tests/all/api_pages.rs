//! Every list answers in pages: `limit` (1 to 1,000) and the opaque `next` cursor. Walking
//! a list two items at a time gives exactly what one large page gives, each item once;
//! limits out of range and cursors of another list are refused.

use std::sync::Arc;

use roster_host::value::FieldValue;

use crate::access::{Api, person};
use crate::serve::{Fixture, fields, idle};

/// Every item of `path` (whose items are under `key`), following `next` with `limit`.
fn walk(api: &Api, token: &str, path: &str, key: &str, limit: usize) -> Vec<serde_json::Value> {
    let join = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!("{path}{join}limit={limit}");
        if let Some(n) = &next {
            url.push_str(&format!("&next={n}"));
        }
        let (status, body) = api.call(Some(token), "GET", &url, "");
        assert_eq!(status, 200, "{url}: {body}");
        let page = body[key]
            .as_array()
            .unwrap_or_else(|| panic!("{url}: {body}"));
        assert!(page.len() <= limit, "{url} answered {} items", page.len());
        items.extend(page.iter().cloned());
        match body["next"].as_str() {
            Some(n) => {
                assert!(!page.is_empty(), "{url}: an empty page with a next cursor");
                next = Some(n.to_string());
            }
            None => {
                assert!(body["next"].is_null(), "{url}: {body}");
                return items;
            }
        }
    }
    panic!("{path}: more than 100 pages");
}

#[test]
fn every_list_pages_with_a_cursor() {
    let fixture = Fixture::new(
        "",
        &[
            (
                "w1",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"ping\"\n",
            ),
            (
                "w2",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"ping\"\n",
            ),
            (
                "w3",
                "svc",
                "[[triggers]]\non = \"event\"\nname = \"other\"\n",
            ),
        ],
    );
    let service = Arc::new(fixture.start());
    let admin = person(&service, "admin@example.com", &["admin"]);
    for i in 0..5 {
        person(&service, &format!("p{i}@example.com"), &["viewer"]);
    }
    for i in 0..9 {
        let status = if i % 3 == 0 { "new" } else { "open" };
        service
            .store()
            .create_record(
                "lead",
                Some(format!("lead-{i}")),
                Some("ann".into()),
                fields(&[("status", FieldValue::Text(status.into()))]),
                "test",
            )
            .unwrap();
    }
    for i in 0..4 {
        service
            .submit_event(
                "ping",
                roster_host::service::EventSubmission {
                    id: Some(format!("e{i}")),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    idle(&service);
    let api = Api::start(service.clone());

    let lists = [
        ("/v1/executions", "executions"),
        ("/v1/executions?worker=w2", "executions"),
        ("/v1/audit", "entries"),
        ("/v1/audit?worker=w1", "entries"),
        ("/v1/approvals", "approvals"),
        ("/v1/alerts", "alerts"),
        ("/v1/records/lead", "records"),
        ("/v1/records/lead?where=status:equals:new", "records"),
        ("/v1/records/lead?where=status:equals:open", "records"),
        ("/v1/people", "accounts"),
        ("/v1/workers", "workers"),
        ("/v1/inventory", "workers"),
        ("/v1/installations", "installations"),
    ];
    for (path, key) in lists {
        let all = walk(&api, &admin, path, key, 1000);
        let paged = walk(&api, &admin, path, key, 2);
        assert_eq!(paged, all, "{path}: the pages differ from one large page");
        let mut seen = std::collections::BTreeSet::new();
        for item in &all {
            assert!(seen.insert(item.to_string()), "{path}: {item} twice");
        }
    }
    // The fixture made enough of each for several pages.
    assert_eq!(
        walk(&api, &admin, "/v1/records/lead", "records", 2).len(),
        9
    );
    assert_eq!(
        walk(&api, &admin, "/v1/executions", "executions", 2).len(),
        8
    );
    assert_eq!(walk(&api, &admin, "/v1/workers", "workers", 2).len(), 3);

    // Limits out of range and cursors that are not this list's are refused.
    let (_, first) = api.call(Some(&admin), "GET", "/v1/workers?limit=1", "");
    let cursor = first["next"].as_str().unwrap().to_string();
    for bad in [
        "/v1/executions?limit=0".to_string(),
        "/v1/executions?limit=1001".to_string(),
        "/v1/executions?limit=-1".to_string(),
        "/v1/executions?limit=1&limit=2".to_string(),
        "/v1/executions?next=%%%".to_string(),
        "/v1/executions?next=AAAA".to_string(),
        format!("/v1/executions?next={cursor}"),
        format!("/v1/records/lead?next={cursor}"),
        "/v1/workers?colour=blue".to_string(),
    ] {
        let (status, body) = api.call(Some(&admin), "GET", &bad, "");
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            ["invalid-query", "invalid-cursor"].contains(&body["code"].as_str().unwrap_or("")),
            "{bad}: {body}"
        );
    }
    // A records cursor resumes only the query it came from.
    let (_, page) = api.call(Some(&admin), "GET", "/v1/records/lead?limit=1", "");
    let cursor = page["next"].as_str().unwrap().to_string();
    let (status, body) = api.call(
        Some(&admin),
        "GET",
        &format!("/v1/records/lead?where=status:equals:new&next={cursor}"),
        "",
    );
    assert_eq!(status, 400, "{body}");
}
