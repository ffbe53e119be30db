//! The supply chain end to end, through the `roster` binary and a real registry on
//! loopback: publish (signed), install with the capability review and an explicit grant,
//! every refusal (nothing installed), upgrades and downgrades, the digest pin, the grant
//! audit; interoperability with `skopeo`; and a scaffolded project from `roster plugin new`
//! to a running installed worker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use roster_host::clock::SystemClock;
use roster_host::config::HostConfig;
use roster_host::service::{EventSubmission, Service};
use roster_host::value::FieldValue;
use roster_registry::artifact::{self, Artifact};
use sha2::{Digest, Sha256};
use test_programs_artifacts::{STALE_LEAD_ALERTER, WORKER_WELL_BEHAVED};

/// One way of trying to install something that must be refused.
type Attempt<'a> = Box<dyn Fn() -> Output + 'a>;

const TOKEN: &str = "push-token-for-tests";

/// A registry on loopback, serving from a temporary directory.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = roster_registry::Storage::open(dir.path()).unwrap();
        let config = roster_registry::RegistryConfig::with_tokens(&[TOKEN.into()], false);
        let port = roster_registry::spawn_on_loopback(storage, config)
            .unwrap()
            .port();
        Registry { dir, port }
    }

    pub fn at(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.dir
            .path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }
}

/// Runs `roster` with `--data-dir data`, no configuration file, and the push token.
pub fn roster(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("ROSTER_CONFIG", data.join("no-roster.toml"))
        .env("ROSTER_REGISTRY_TOKEN", TOKEN)
        .env_remove("ROSTER_TOKEN")
        .output()
        .unwrap()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
pub fn ok(out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    t
}

/// Asserts the command failed, saying `expected`, and returns what it said.
#[track_caller]
fn refused(out: Output, expected: &str) -> String {
    let t = text(&out);
    assert!(!out.status.success(), "expected a refusal: {t}");
    assert!(t.contains(expected), "expected `{expected}` in: {t}");
    t
}

/// Every file under the data directory's `installed/` and `components/`, with its digest.
fn installed_state(data: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for dir in ["installed", "components"] {
        let mut stack = vec![data.join(dir)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    out.insert(p, hex::encode(Sha256::digest(bytes)));
                }
            }
        }
    }
    out
}

/// The reviewer worker's manifest: the well-behaved program reads and updates leads,
/// notifies in-app and keeps memory; it also asks for signals it never imports.
fn reviewer_manifest(version: &str, lead_write: &str) -> String {
    format!(
        r#"[plugin]
id = "acme.reviewer"
name = "Reviewer"
version = "{version}"
domain = "revenue"
description = "Marks leads reviewed and tells their owner."

[owners]
business = "sales@acme.test"
technical = "dev@acme.test"

[capabilities.records.objects.lead]
read = ["*"]
write = [{lead_write}]

[capabilities.notify]
channels = ["in-app"]
recipients = ["*"]

[capabilities.memory]
quota-bytes = 1024

[capabilities.signals]
topics = ["revenue.*"]

[[triggers]]
on = "event"
name = "review"
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn pushed(registry: &Registry, repo_tag: &str, built: &Artifact) {
    let r = roster_host::distribution::oci::Reference::parse(&registry.at(repo_tag)).unwrap();
    roster_host::distribution::oci::Client::new(Some(TOKEN.into()))
        .unwrap()
        .push(&r, built)
        .unwrap();
}

fn build(manifest: &str, component: Vec<u8>, signature: Option<&artifact::Signature>) -> Artifact {
    let m = roster_host::Manifest::parse(Path::new("m"), manifest).unwrap();
    Artifact::build(
        &m.plugin.id,
        &m.plugin.version,
        "dev@acme.test",
        component,
        manifest,
        signature,
        &[],
        &[],
        "2026-11-21T00:00:00Z",
    )
}

/// Replaces `from` with `to` in a file (which must contain it); returns the original text.
fn edit_file(path: &Path, from: &str, to: &str) -> String {
    let original = std::fs::read_to_string(path).unwrap();
    assert!(original.contains(from), "{from} in {}", path.display());
    std::fs::write(path, original.replace(from, to)).unwrap();
    original
}

/// The host configuration over a data directory's installed workers.
fn installed_config(data: &Path) -> Result<HostConfig, roster_host::Error> {
    let mut config = HostConfig::defaults();
    config.data_dir = data.to_path_buf();
    config.add_installed().map(|()| config)
}

/// Starts the service on the data directory's installed workers, creates a lead (for
/// record triggers) and sends the `review` event about it (for event triggers), and
/// returns `worker`'s last execution.
pub fn run_installed(data: &Path, worker: &str, record_id: &str) -> serde_json::Value {
    let service = Service::start(installed_config(data).unwrap(), Arc::new(SystemClock)).unwrap();
    service
        .store()
        .create_record(
            "lead",
            Some(record_id.into()),
            Some("ann".into()),
            [
                ("name".to_string(), FieldValue::Text("Grace Hopper".into())),
                ("employees".to_string(), FieldValue::Number(1200.0)),
            ]
            .into(),
            "test",
        )
        .unwrap();
    service
        .submit_event(
            "review",
            EventSubmission {
                id: Some(format!("evt-{record_id}")),
                object: Some("lead".into()),
                record_id: Some(record_id.into()),
                payload: None,
            },
        )
        .unwrap();
    assert!(service.wait_idle(Duration::from_secs(60)));
    let entries = service.store().executions_since(0).unwrap();
    service.shutdown();
    let entry = entries
        .into_iter()
        .rfind(|e| !e.is_governance() && e.worker == worker)
        .expect("an execution");
    serde_json::to_value(&entry).unwrap()
}

#[test]
fn installs_are_signed_verified_reviewed_granted_and_pinned() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let w = work.path();

    ok(roster(
        &data,
        &[
            "plugin",
            "keygen",
            "--out",
            w.join("acme").to_str().unwrap(),
        ],
    ));
    ok(roster(
        &data,
        &[
            "plugin",
            "keygen",
            "--out",
            w.join("mallory").to_str().unwrap(),
        ],
    ));
    let acme_pub = w.join("acme.pub");
    let acme_pub = acme_pub.to_str().unwrap();
    let acme_key = w.join("acme.key");
    let acme_key = acme_key.to_str().unwrap();
    let v1 = write(w, "v1.toml", &reviewer_manifest("1.0.0", r#""status""#));
    let v2 = write(
        w,
        "v2.toml",
        &reviewer_manifest("1.1.0", r#""status", "rating""#),
    );
    let v3 = write(
        w,
        "v3.toml",
        &reviewer_manifest("1.2.0", r#""status", "rating""#),
    );
    let publish = |manifest: &str, repo: &str, key: &[&str]| {
        let mut args = vec![
            "plugin",
            "publish",
            WORKER_WELL_BEHAVED,
            "--manifest",
            manifest,
            "--to",
        ];
        let to = registry.at(repo);
        args.push(&to);
        args.extend_from_slice(key);
        roster(&data, &args)
    };
    let out = ok(publish(&v1, "acme/reviewer", &["--key", acme_key]));
    assert!(out.contains("published acme.reviewer 1.0.0"), "{out}");
    let install = |reference: &str, extra: &[&str]| {
        let r = registry.at(reference);
        let mut args = vec!["install", r.as_str(), "--trust-key", acme_pub];
        args.extend_from_slice(extra);
        roster(&data, &args)
    };

    let install_requested =
        |reference: &str| install(reference, &["--grant-requested", "--principal", "svc"]);
    let acme_secret = || artifact::secret_key(&std::fs::read_to_string(acme_key).unwrap()).unwrap();

    // Without a grant: the review, and nothing installed.
    let review = refused(install("acme/reviewer:1.0.0", &[]), "no grant given");
    for shown in [
        "acme.reviewer 1.0.0 → worker `reviewer`",
        "signed by  key",
        "records    yes       yes",
        "notify     yes       yes",
        "memory     yes       yes",
        "signals    yes       no",
        "requested records:",
        "nothing was installed",
    ] {
        assert!(review.contains(shown), "`{shown}` in {review}");
    }
    assert!(installed_state(&data).is_empty());

    // The refusals, each leaving nothing installed.
    let refusals: Vec<(&str, Attempt, &str)> = vec![
        (
            "unsigned",
            Box::new(|| {
                ok(publish(&v1, "acme/unsigned", &["--unsigned"]));
                install_requested("acme/unsigned:1.0.0")
            }),
            "the artifact is not signed (pass --allow-unsigned to install it anyway)",
        ),
        (
            "wrong key",
            Box::new(|| {
                let key = w.join("mallory.key");
                ok(publish(
                    &v1,
                    "acme/mallory",
                    &["--key", key.to_str().unwrap()],
                ));
                install_requested("acme/mallory:1.0.0")
            }),
            "which is not among the trusted publisher keys",
        ),
        (
            "signature for another digest",
            Box::new(|| {
                let key = acme_secret();
                let manifest = reviewer_manifest("1.0.0", r#""status""#);
                let other = std::fs::read(STALE_LEAD_ALERTER).unwrap();
                let signature = artifact::sign(&key, "acme.reviewer", "1.0.0", &other, &manifest);
                let component = std::fs::read(WORKER_WELL_BEHAVED).unwrap();
                pushed(
                    &registry,
                    "acme/swapped:1.0.0",
                    &build(&manifest, component, Some(&signature)),
                );
                install_requested("acme/swapped:1.0.0")
            }),
            "the signature does not verify: it was made for other content",
        ),
        (
            "tampered manifest",
            Box::new(|| {
                // The signed artifact, its Roster manifest widened after signing.
                let key = acme_secret();
                let manifest = reviewer_manifest("1.0.0", r#""status""#);
                let component = std::fs::read(WORKER_WELL_BEHAVED).unwrap();
                let signature =
                    artifact::sign(&key, "acme.reviewer", "1.0.0", &component, &manifest);
                let widened = manifest.replace(r#"write = ["status"]"#, r#"write = ["*"]"#);
                assert_ne!(widened, manifest);
                pushed(
                    &registry,
                    "acme/widened:1.0.0",
                    &build(&widened, component, Some(&signature)),
                );
                install_requested("acme/widened:1.0.0")
            }),
            "the signature does not verify: it was made for other content",
        ),
        (
            "imports beyond the manifest",
            Box::new(|| {
                let narrow = reviewer_manifest("1.0.0", r#""status""#).replace(
                    "[capabilities.notify]\nchannels = [\"in-app\"]\nrecipients = [\"*\"]\n",
                    "",
                );
                let path = write(w, "narrow.toml", &narrow);
                // `publish` checks it as `install` would, and refuses.
                let out = refused(
                    publish(&path, "acme/narrow", &["--key", acme_key]),
                    "publish refused",
                );
                assert!(out.contains("imports `notify`"), "{out}");
                let key = acme_secret();
                let component = std::fs::read(WORKER_WELL_BEHAVED).unwrap();
                let signature = artifact::sign(&key, "acme.reviewer", "1.0.0", &component, &narrow);
                pushed(
                    &registry,
                    "acme/narrow:1.0.0",
                    &build(&narrow, component, Some(&signature)),
                );
                install_requested("acme/narrow:1.0.0")
            }),
            "the component imports `notify` (roster:notify/notify@0.1.0), which its manifest does not request",
        ),
    ];
    for (what, attempt, expected) in &refusals {
        let before = installed_state(&data);
        let said = refused(attempt(), expected);
        assert!(said.contains("nothing was installed"), "{what}: {said}");
        assert_eq!(
            installed_state(&data),
            before,
            "{what} changed the installation"
        );
    }
    // Unsigned is accepted only when explicitly allowed.
    ok(install(
        "acme/unsigned:1.0.0",
        &[
            "--allow-unsigned",
            "--grant-requested",
            "--principal",
            "svc",
            "--name",
            "unsigned-reviewer",
        ],
    ));

    // Install under an explicit grant: the manifest's request, signals left out by a file.
    let grant = write(
        w,
        "grant.toml",
        r#"[grant]
plugin = "acme.reviewer"
principal = "svc-reviewer"

[capabilities.records.objects.lead]
read = ["*"]
write = ["status"]

[capabilities.notify]
channels = ["in-app"]
recipients = ["*"]

[capabilities.memory]
quota-bytes = 1024

[capabilities.signals]
topics = ["revenue.*"]
"#,
    );
    let out = ok(install("acme/reviewer:1.0.0", &["--grant", &grant]));
    assert!(out.contains("installed `reviewer` 1.0.0"), "{out}");
    let worker_file = std::fs::read_to_string(data.join("installed/reviewer/worker.toml")).unwrap();
    let component = std::fs::read(WORKER_WELL_BEHAVED).unwrap();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&component)));
    assert!(
        worker_file.contains(&format!("pinned-digest = \"{digest}\"")),
        "{worker_file}"
    );

    // It runs in the host, as the pinned component.
    let entry = run_installed(&data, "reviewer", "L-1");
    assert_eq!(entry["status"], "success", "{entry}");
    assert_eq!(
        entry["report"]["component_digest"],
        digest.as_str(),
        "{entry}"
    );
    assert_eq!(entry["worker"], "reviewer");

    // Upgrade asking for more (writing `rating`) needs a new grant.
    ok(publish(&v2, "acme/reviewer", &["--key", acme_key]));
    let before = installed_state(&data);
    let said = refused(
        install("acme/reviewer:1.1.0", &[]),
        "version 1.1.0 asks for more than the grant in force (records: writing `lead.rating` is not granted)",
    );
    assert!(said.contains("nothing was installed"), "{said}");
    assert_eq!(installed_state(&data), before);
    let out = ok(install("acme/reviewer:1.1.0", &["--grant-requested"]));
    assert!(out.contains("upgraded `reviewer` 1.1.0"), "{out}");

    // An upgrade asking for nothing more keeps the grant in force.
    ok(publish(&v3, "acme/reviewer", &["--key", acme_key]));
    let out = ok(install("acme/reviewer:1.2.0", &[]));
    assert!(out.contains("upgraded `reviewer` 1.2.0"), "{out}");

    // A silent downgrade is refused; an explicit one goes through.
    let before = installed_state(&data);
    refused(
        install("acme/reviewer:1.0.0", &["--grant-requested"]),
        "version 1.0.0 is older than the installed 1.2.0; a downgrade needs --allow-downgrade",
    );
    assert_eq!(installed_state(&data), before);
    let out = ok(install(
        "acme/reviewer:1.0.0",
        &["--allow-downgrade", "--grant", &grant],
    ));
    assert!(out.contains("downgraded `reviewer` 1.0.0"), "{out}");

    // The grant audit: requested vs imported vs granted, unused, and the history.
    let report: serde_json::Value =
        serde_json::from_str(&ok(roster(&data, &["audit", "grants", "--json"]))).unwrap();
    let reviewer = report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker"] == "reviewer")
        .unwrap()
        .clone();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&reviewer["requested"]),
        ["records", "notify", "memory", "signals"]
    );
    assert_eq!(
        names(&reviewer["imported"]),
        ["records", "notify", "memory"]
    );
    assert_eq!(
        names(&reviewer["granted"]),
        ["records", "notify", "memory", "signals"]
    );
    assert_eq!(names(&reviewer["unused"]), ["signals"]);
    assert_eq!(reviewer["calls"]["records"], 2, "{reviewer}");
    let changes: Vec<String> = reviewer["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} +{:?} -{:?}",
                c["change"].as_str().unwrap(),
                c["version"].as_str().unwrap(),
                names(&c["granted-added"]),
                names(&c["granted-removed"])
            )
        })
        .collect();
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert!(changes[0].starts_with("install 1.0.0"), "{changes:?}");
    assert_eq!(
        changes[1], "upgrade 1.1.0 +[\"records: writing `lead.rating`\"] -[]",
        "{changes:?}"
    );
    assert_eq!(changes[2], "upgrade 1.2.0 +[] -[]", "{changes:?}");
    assert_eq!(
        changes[3], "downgrade 1.0.0 +[] -[\"records: writing `lead.rating`\"]",
        "{changes:?}"
    );
    let table = ok(roster(&data, &["audit", "grants"]));
    assert!(table.contains("reviewer"), "{table}");
    assert!(table.contains("upgrade 1.0.0 → 1.1.0"), "{table}");

    // The audit trail records every installation.
    let search = ok(roster(
        &data,
        &["audit", "search", "--json", "--limit", "100"],
    ));
    for action in [
        "governance:worker.install",
        "governance:worker.upgrade",
        "governance:worker.downgrade",
    ] {
        assert!(search.contains(action), "{action} in {search}");
    }

    // The pin: a component changed on disk after installation is not loaded.
    let kept = data
        .join("components")
        .join(format!("{}.wasm", digest.trim_start_matches("sha256:")));
    let mut changed = component.clone();
    changed.extend_from_slice(&[0, 1, 2]);
    std::fs::write(&kept, &changed).unwrap();
    let e = Service::start(installed_config(&data).unwrap(), Arc::new(SystemClock))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("not the pinned"), "{e}");
    std::fs::write(&kept, &component).unwrap();

    // The signature is checked again at every load: a manifest widened after installation
    // is refused, and so is a worker whose publisher key an admin stopped trusting.
    let installed_manifest = data.join("installed/reviewer/manifest.toml");
    let signed = edit_file(
        &installed_manifest,
        "quota-bytes = 1024",
        "quota-bytes = 4096",
    );
    let e = Service::start(installed_config(&data).unwrap(), Arc::new(SystemClock))
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("the signature does not verify"),
        "{e}"
    );
    std::fs::write(&installed_manifest, &signed).unwrap();
    let remembered: Vec<PathBuf> = std::fs::read_dir(data.join("trusted-keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        remembered.len(),
        1,
        "the key trusted with --trust-key is kept: {remembered:?}"
    );
    let key_text = std::fs::read_to_string(&remembered[0]).unwrap();
    std::fs::remove_file(&remembered[0]).unwrap();
    let e = installed_config(&data).expect_err("refused");
    assert!(e.to_string().contains("which is no longer trusted"), "{e}");
    std::fs::write(&remembered[0], key_text).unwrap();
    let entry = run_installed(&data, "reviewer", "L-2");
    assert_eq!(entry["status"], "success", "{entry}");

    // A layer changed in the registry after publishing is refused on pull.
    let pulled = roster_host::distribution::oci::Client::new(None)
        .unwrap()
        .pull(
            &roster_host::distribution::oci::Reference::parse(&registry.at("acme/reviewer:1.2.0"))
                .unwrap(),
        )
        .unwrap();
    let layer = artifact::describe(&pulled.manifest).unwrap().layer;
    std::fs::write(registry.blob(&layer.digest), &changed).unwrap();
    let before = installed_state(&data);
    let said = refused(
        install(
            "acme/reviewer:1.2.0",
            &[
                "--name",
                "reviewer-two",
                "--grant-requested",
                "--principal",
                "svc",
            ],
        ),
        "the component layer does not match its digest",
    );
    assert!(said.contains("it was tampered with"), "{said}");
    assert!(said.contains("nothing was installed"), "{said}");
    assert_eq!(installed_state(&data), before);
}

/// `skopeo` from the distribution: installed here when missing and we may (as root with
/// apt), else the test says how to get it.
fn skopeo() -> &'static str {
    let works = || {
        Command::new("skopeo")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works() {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let _ = Command::new("apt-get").arg("update").status();
            let _ = Command::new("apt-get")
                .args(["install", "-y", "skopeo"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
        }
        assert!(
            works(),
            "this test needs skopeo (Debian: apt-get install -y skopeo; .ci/run installs it)"
        );
    }
    "skopeo"
}

#[track_caller]
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{cmd:?}: {t}");
    t
}

#[test]
fn skopeo_pushes_and_pulls_through_the_registry() {
    let skopeo = skopeo();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let data = w.join("data");
    ok(roster(
        &data,
        &[
            "plugin",
            "keygen",
            "--out",
            w.join("acme").to_str().unwrap(),
        ],
    ));
    let manifest = write(w, "v1.toml", &reviewer_manifest("1.0.0", r#""status""#));
    let layout = w.join("published");
    let out = ok(roster(
        &data,
        &[
            "plugin",
            "publish",
            WORKER_WELL_BEHAVED,
            "--manifest",
            &manifest,
            "--key",
            w.join("acme.key").to_str().unwrap(),
            "--to",
            &format!("oci:{}:1.0.0", layout.display()),
        ],
    ));
    let published = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("manifest  "))
        .unwrap()
        .trim()
        .to_string();

    // skopeo pushes the artifact into the registry (chunked upload, token auth) ...
    let remote = format!("docker://{}", registry.at("acme/reviewer:1.0.0"));
    run(Command::new(skopeo).args([
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("roster:{TOKEN}"),
        &format!("oci:{}:1.0.0", layout.display()),
        &remote,
    ]));
    // ... reads it back ...
    let tags = run(Command::new(skopeo).args([
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}", registry.at("acme/reviewer")),
    ]));
    assert!(tags.contains("\"1.0.0\""), "{tags}");
    let inspected =
        run(Command::new(skopeo).args(["inspect", "--raw", "--tls-verify=false", &remote]));
    assert_eq!(
        roster_registry::digest_of(inspected.trim_end().as_bytes()),
        published,
        "the registry serves the manifest byte for byte"
    );
    // ... and pulls it into an OCI layout of its own.
    let pulled = w.join("pulled");
    run(Command::new(skopeo).args([
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:1.0.0", pulled.display()),
    ]));

    // What skopeo pulled installs (signature and digests verified) and runs.
    let out = ok(roster(
        &data,
        &[
            "install",
            &format!("oci:{}:1.0.0", pulled.display()),
            "--trust-key",
            w.join("acme.pub").to_str().unwrap(),
            "--grant-requested",
            "--principal",
            "svc-reviewer",
        ],
    ));
    assert!(out.contains("installed `reviewer` 1.0.0"), "{out}");
    // What skopeo pushed installs from the registry through the host's own client.
    let out = ok(roster(
        &data,
        &[
            "install",
            &registry.at("acme/reviewer:1.0.0"),
            "--name",
            "reviewer-from-registry",
            "--trust-key",
            w.join("acme.pub").to_str().unwrap(),
            "--grant-requested",
            "--principal",
            "svc-reviewer",
        ],
    ));
    assert!(out.contains(&format!("manifest   {published}")), "{out}");
    let entry = run_installed(&data, "reviewer", "L-7");
    assert_eq!(entry["status"], "success", "{entry}");
    let entry = run_installed(&data, "reviewer-from-registry", "L-8");
    assert_eq!(entry["status"], "success", "{entry}");
}

#[test]
fn a_new_project_builds_passes_its_tests_publishes_installs_and_runs() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let data = w.join("data");
    let project = w.join("priority-leads");
    let project_arg = project.to_str().unwrap();
    let new = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("ROSTER_CONFIG", data.join("no-roster.toml"))
            .env("ROSTER_REGISTRY_TOKEN", TOKEN)
            // Share the test programs' compiled dependencies.
            .env(
                "CARGO_TARGET_DIR",
                test_programs_artifacts::GUEST_TARGET_DIR,
            )
            .output()
            .unwrap()
    };
    let out = ok(new(&[
        "plugin",
        "new",
        project_arg,
        "--id",
        "acme.priority-leads",
    ]));
    for file in [
        "Cargo.toml",
        "worker.toml",
        "src/lib.rs",
        "fixtures/records.jsonl",
        "tests/priority-lead.toml",
    ] {
        assert!(out.contains(file), "{file} in {out}");
    }
    refused(
        new(&["plugin", "new", project_arg]),
        "exists and is not empty",
    );

    let out = ok(new(&["plugin", "test", project_arg]));
    assert!(out.contains("test priority-lead ... ok"), "{out}");
    assert!(out.contains("test small-lead ... ok"), "{out}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");

    // A test that expects something else fails, saying what differed.
    let case = project.join("tests/priority-lead.toml");
    let good = edit_file(&case, "notify.send in-app:ann", "notify.send in-app:bob");
    let out = new(&["plugin", "test", project_arg]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("test priority-lead ... FAILED: actions"), "{t}");
    std::fs::write(&case, good).unwrap();

    ok(new(&[
        "plugin",
        "keygen",
        "--out",
        w.join("me").to_str().unwrap(),
    ]));
    let out = ok(new(&[
        "plugin",
        "publish",
        project_arg,
        "--key",
        w.join("me.key").to_str().unwrap(),
        "--to",
        &registry.at("acme/priority-leads"),
    ]));
    assert!(out.contains("published acme.priority-leads 0.1.0"), "{out}");
    let out = ok(new(&[
        "install",
        &registry.at("acme/priority-leads:0.1.0"),
        "--trust-key",
        w.join("me.pub").to_str().unwrap(),
        "--grant-requested",
        "--principal",
        "svc-priority",
    ]));
    assert!(out.contains("installed `priority-leads` 0.1.0"), "{out}");
    let entry = run_installed(&data, "priority-leads", "L-42");
    assert_eq!(entry["status"], "success", "{entry}");
    let actions: Vec<String> = entry["report"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}.{} {}",
                a["capability"].as_str().unwrap(),
                a["operation"].as_str().unwrap(),
                a["target"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        ["records.update lead/L-42", "notify.send in-app:ann"]
    );

    // A second installation with a setting of its own, checked against the [config] schema.
    let reference = registry.at("acme/priority-leads:0.1.0");
    let key = w.join("me.pub");
    let second = |setting: &str| {
        new(&[
            "install",
            &reference,
            "--name",
            "priority-big",
            "--trust-key",
            key.to_str().unwrap(),
            "--grant-requested",
            "--principal",
            "svc-priority",
            "--setting",
            setting,
        ])
    };
    let before = installed_state(&data);
    for (bad, says) in [
        (
            "min-employees=0",
            "setting `min-employees`: 0 is outside 1..=",
        ),
        (
            "min-employees=lots",
            "setting `min-employees`: expected an integer",
        ),
        (
            "max-employees=5",
            "setting `max-employees` is not in the plugin's [config] schema",
        ),
    ] {
        let said = refused(second(bad), says);
        assert!(said.contains("nothing was installed"), "{said}");
        assert_eq!(installed_state(&data), before, "{bad}");
    }
    let review = ok(second("min-employees=5000"));
    assert!(
        review.contains("min-employees (integer, default 100): Leads from companies this size or larger are a priority."),
        "{review}"
    );
    let entry = run_installed(&data, "priority-big", "L-43");
    assert_eq!(entry["status"], "skipped", "1,200 is below 5,000: {entry}");
    let entry = run_installed(&data, "priority-leads", "L-44");
    assert_eq!(entry["status"], "success", "{entry}");
}

/// A raw HTTP/1.1 GET on loopback: the status code.
fn get_status(port: u16, path: &str, authorization: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = authorization
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}connection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn roster_registry_serve_takes_pushes_with_the_token_and_keeps_private_pulls_private() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["registry", "serve", "--dir"])
        .arg(dir.path().join("registry"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--token-env",
            "REG_TOKEN",
            "--private",
        ])
        .env("REG_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        get_status(port, "/v2/", None).is_some()
    });
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("admin:{TOKEN}")
        )
    );
    let result = std::panic::catch_unwind(|| {
        assert!(up, "the registry did not start");
        assert_eq!(get_status(port, "/v2/", None), Some(401));
        assert_eq!(
            get_status(port, "/v2/", Some("Basic YWRtaW46d3Jvbmc=")),
            Some(401)
        );
        assert_eq!(get_status(port, "/v2/", Some(&basic)), Some(200));
        assert_eq!(
            get_status(port, "/.well-known/wasm-pkg/registry.json", None),
            Some(200)
        );
        let artifact = build(
            &reviewer_manifest("1.0.0", r#""status""#),
            std::fs::read(WORKER_WELL_BEHAVED).unwrap(),
            None,
        );
        let r = roster_host::distribution::oci::Reference::parse(&format!(
            "127.0.0.1:{port}/acme/reviewer:1.0.0"
        ))
        .unwrap();
        let anonymous = roster_host::distribution::oci::Client::new(None).unwrap();
        assert!(
            anonymous.push(&r, &artifact).is_err(),
            "pushes need the token"
        );
        let with_token = roster_host::distribution::oci::Client::new(Some(TOKEN.into())).unwrap();
        let digest = with_token.push(&r, &artifact).unwrap();
        assert!(anonymous.pull(&r).is_err(), "pulls are private");
        assert_eq!(with_token.pull(&r).unwrap().digest, digest);
        assert_eq!(get_status(port, "/v2/_catalog", Some(&basic)), Some(200));
    });
    let _ = server.kill();
    let _ = server.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
