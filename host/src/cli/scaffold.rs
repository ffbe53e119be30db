//! `roster plugin new`: a worker project that builds and passes its own tests as generated.
//!
//! The project holds a manifest (`worker.toml`) asking for the least the worker needs, the
//! grant its tests run under (`grant.toml`), Rust source using `roster-sdk`, fixture
//! records (`fixtures/records.jsonl`) and fixture test cases (`tests/*.toml`, run by
//! `roster plugin test`): one where the worker acts, one where it must not.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// What the generated worker asks for, and what its tests are granted: the same.
const SCOPES: &str = r#"[capabilities.records.objects.lead]
read = ["name", "employees"]
write = ["rating"]

[capabilities.notify]
channels = ["in-app"]
recipients = ["*"]
"#;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Scaffold {
    /// The project directory (must not exist, or be empty).
    pub dir: PathBuf,
    /// The package and worker name (lower-case letters, digits and `-`).
    pub name: String,
    /// The plugin id (`acme.priority-leads`).
    pub id: String,
    /// The business domain.
    pub domain: crate::sandbox::manifest::Domain,
    /// The owners' addresses (business, technical).
    pub owners: (String, String),
    /// Where the `roster-sdk` crate is.
    pub sdk: PathBuf,
}

impl Scaffold {
    /// The defaults for a project at `dir`, its last part naming the worker.
    pub fn new(dir: &Path, sdk: &Path) -> Result<Scaffold, Error> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty()
            || !name.starts_with(|c: char| c.is_ascii_lowercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::InvalidRequest(format!(
                "`{name}`: name the project directory with lower-case letters, digits and `-`, starting with a letter"
            )));
        }
        Ok(Scaffold {
            dir: dir.to_path_buf(),
            id: format!("example.{name}"),
            name,
            domain: crate::sandbox::manifest::Domain::Revenue,
            owners: (
                "business-owner@example.com".into(),
                "technical-owner@example.com".into(),
            ),
            sdk: sdk.to_path_buf(),
        })
    }

    /// The files, by path relative to the project.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let name = &self.name;
        let title: String = name
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        let type_name = title.replace(' ', "");
        let sdk = self.sdk.display().to_string().replace('\\', "/");
        vec![
            (
                "Cargo.toml",
                format!(
                    r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
roster-sdk = {{ path = "{sdk}" }}

# A project of its own, not a member of an enclosing workspace.
[workspace]

[profile.release]
debug = false
strip = "debuginfo"
"#
                ),
            ),
            (
                "rust-toolchain.toml",
                "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip2\"]\nprofile = \"minimal\"\n"
                    .to_string(),
            ),
            (".gitignore", "/target\n".to_string()),
            (
                "worker.toml",
                format!(
                    r#"# The plugin manifest: who this worker is and the least it needs.
# `roster plugin publish` signs it with the component; admins review it on install.
[plugin]
id = "{id}"
name = "{title}"
version = "0.1.0"
domain = "{domain}"
description = "Marks new leads from companies of 100 or more people (a setting) as priority and tells their owner."

[owners]
business = "{business}"
technical = "{technical}"

{scopes}
[limits]
timeout-ms = 2000
actions = 5

# What an installation may set under [settings] in its worker file.
[config.min-employees]
type = "integer"
description = "Leads from companies this size or larger are a priority."
default = 100
min = 1

# What an installation starts with; admins may change it in the installed worker file.
[[triggers]]
on = "record-created"
object = "lead"
"#,
                    id = self.id,
                    scopes = SCOPES,
                    domain = self.domain.as_str(),
                    business = self.owners.0,
                    technical = self.owners.1,
                ),
            ),
            (
                "grant.toml",
                format!(
                    r#"# The grant the fixture tests run under (`roster plugin test`, `roster run`).
# Admins write their own on install, or accept the manifest's request.
[grant]
plugin = "{id}"
principal = "svc-{name}"

{scopes}"#,
                    id = self.id,
                    scopes = SCOPES,
                ),
            ),
            (
                "src/lib.rs",
                format!(
                    r#"//! {title}: when a lead is created, marks it `priority` if its company has 100 or more
//! people, and tells the lead's owner in-app.

use roster_sdk::notify::{{self, Channel}};
use roster_sdk::{{Event, Outcome, Worker, WorkerError, field, records}};

/// Companies this size or larger are a priority, unless the installation's
/// `min-employees` setting says otherwise.
const PRIORITY_EMPLOYEES: f64 = 100.0;

struct {type_name};

impl Worker for {type_name} {{
    fn handle(event: Event) -> Result<Outcome, WorkerError> {{
        let lead = event.require_record()?;
        let employees = lead.number("employees").unwrap_or(0.0);
        let name = lead.text("name").unwrap_or(&lead.id).to_string();
        let threshold = event
            .setting_number("min-employees")
            .unwrap_or(PRIORITY_EMPLOYEES);
        if employees < threshold {{
            return Ok(Outcome::skipped(format!(
                "{{name}}: {{employees}} employees, below {{threshold}}"
            )));
        }}
        records::update("lead", &lead.id, &[field("rating", "priority")])?;
        if let Some(owner) = &lead.owner {{
            notify::send(&notify::message(
                Channel::InApp,
                &[owner.as_str()],
                Some("Priority lead"),
                &format!("{{name}} ({{employees}} employees) is a priority lead"),
            ))?;
        }}
        Ok(Outcome::success(format!("{{name}} marked priority")))
    }}
}}

roster_sdk::export!({type_name});
"#
                ),
            ),
            (
                "fixtures/records.jsonl",
                concat!(
                    r#"{"object": "lead", "id": "L-1", "owner": "ann", "fields": {"name": "Grace Hopper", "employees": 1200, "status": "new"}}"#,
                    "\n",
                    r#"{"object": "lead", "id": "L-2", "owner": "bob", "fields": {"name": "Sam Small", "employees": 3, "status": "new"}}"#,
                    "\n"
                )
                .to_string(),
            ),
            (
                "tests/priority-lead.toml",
                r#"# A lead from a company of 1,200 people: marked priority, owner told.
status = "success"
actions = ["records.update lead/L-1", "notify.send in-app:ann"]

[event]
id = "evt-L-1-created"
trigger = { type = "record-created" }
object = "lead"
record-id = "L-1"
"#
                .to_string(),
            ),
            (
                "event.json",
                r#"{
  "id": "evt-L-1-created",
  "trigger": { "type": "record-created" },
  "object": "lead",
  "record-id": "L-1"
}
"#
                .to_string(),
            ),
            (
                "tests/small-lead.toml",
                r#"# A lead from a company of 3 people: nothing is changed, nobody is told.
status = "skipped"
actions = []

[event]
id = "evt-L-2-created"
trigger = { type = "record-created" }
object = "lead"
record-id = "L-2"
"#
                .to_string(),
            ),
            (
                "README.md",
                format!(
                    r#"# {title}

A Roster worker. `worker.toml` says who it is and what it asks for; `src/lib.rs` is what
it does; `tests/*.toml` are fixture cases over `fixtures/records.jsonl`.

```sh
roster plugin test .                                    # build, then run the fixture cases
roster run . --records fixtures/records.jsonl --dry-run # run it once on event.json
roster plugin keygen --out ~/.roster/publisher          # once: your publisher key pair
roster plugin publish . --key ~/.roster/publisher.key --to 127.0.0.1:5000/example/{name}
```

Admins install it with `roster install 127.0.0.1:5000/example/{name}:0.1.0`, after
trusting your public key (`publisher.pub`).
"#
                ),
            ),
        ]
    }

    /// Writes the project; refuses a directory that exists and is not empty.
    pub fn write(&self) -> Result<Vec<PathBuf>, Error> {
        if self
            .dir
            .read_dir()
            .is_ok_and(|mut entries| entries.next().is_some())
        {
            return Err(Error::InvalidRequest(format!(
                "{} exists and is not empty",
                self.dir.display()
            )));
        }
        let mut written = Vec::new();
        for (path, text) in self.files() {
            let path = self.dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, text).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}
