//! `roster people` and `roster tokens`: accounts, roles and API tokens.
//!
//! Through the API (see `client.rs`): a running service's, where the caller's token
//! decides what is allowed, or the data directory's, where the local operator acts as
//! `local:<user>` (recorded in the audit trail).

use std::process::ExitCode;

use clap::Subcommand;

use super::Paths;
use super::client::{Client, encode, print_json, segment};
use crate::server::people::{AccountChange, check_roles};
use crate::store::AccountKind;

/// `roster people` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// List accounts and their tokens (never the tokens themselves).
    List,
    /// Add a user or service account.
    Add {
        /// The id (for people, their email address).
        id: String,
        /// A service account (a program) rather than a person.
        #[arg(long)]
        service: bool,
        /// A display name.
        #[arg(long, default_value = "")]
        name: String,
        /// A role: admin, security-auditor, publisher, business-owner, reviewer, operator,
        /// viewer; the last four can be scoped to a domain (`reviewer@revenue`). Repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Change an account's roles, or disable or enable it.
    Change {
        /// The account.
        id: String,
        /// Add a role (repeatable).
        #[arg(long)]
        add: Vec<String>,
        /// Remove a role (repeatable).
        #[arg(long)]
        remove: Vec<String>,
        /// Disable the account: its tokens stop working.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable it again.
        #[arg(long)]
        enable: bool,
    },
    /// A one-time link that signs the account in to the console (printed once).
    Link {
        /// The account.
        id: String,
        /// How many hours the link works (1 to 72).
        #[arg(long, default_value_t = 24)]
        hours: u32,
    },
}

/// `roster tokens` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Issue a token for an account; it is printed once and stored only as a digest.
    Issue {
        /// The account.
        account: String,
        /// What the token is for.
        #[arg(long)]
        name: String,
        /// Expire it after this many days.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Revoke a token by its id (`tok-...`).
    Revoke {
        /// The token's id.
        id: String,
    },
}

pub(super) fn people(paths: &Paths, command: PeopleCommand) -> anyhow::Result<ExitCode> {
    let client = Client::open(paths)?;
    match command {
        PeopleCommand::List => {
            let (mut accounts, mut tokens) = (Vec::new(), Vec::new());
            let mut next: Option<String> = None;
            loop {
                let mut path = "/v1/people?limit=1000".to_string();
                if let Some(n) = &next {
                    path.push_str(&format!("&next={}", encode(n)));
                }
                let mut page = client.get(&path)?;
                for (key, into) in [("accounts", &mut accounts), ("tokens", &mut tokens)] {
                    if let Some(found) = page[key].as_array_mut() {
                        into.append(found);
                    }
                }
                match page["next"].as_str() {
                    Some(n) => next = Some(n.to_string()),
                    None => break,
                }
            }
            print_json(&serde_json::json!({ "accounts": accounts, "tokens": tokens }))
        }
        PeopleCommand::Add {
            id,
            service,
            name,
            roles,
        } => {
            check_roles(&roles).map_err(anyhow::Error::msg)?;
            let kind = if service {
                AccountKind::Service
            } else {
                AccountKind::User
            };
            let body = serde_json::json!({ "id": id, "kind": kind, "name": name, "roles": roles });
            client.print_post("/v1/people", &body)
        }
        PeopleCommand::Change {
            id,
            add,
            remove,
            disable,
            enable,
        } => {
            let change = AccountChange {
                roles: None,
                add,
                remove,
                disabled: (disable || enable).then_some(disable),
            };
            change.check().map_err(anyhow::Error::msg)?;
            let body = serde_json::json!({
                "add": change.add,
                "remove": change.remove,
                "disabled": change.disabled,
            });
            print_json(&client.call(
                http::Method::PATCH,
                &format!("/v1/people/{}", segment(&id)),
                Some(&body),
            )?)
        }
        PeopleCommand::Link { id, hours } => client.print_post(
            &format!("/v1/people/{}/login-links", segment(&id)),
            &serde_json::json!({ "hours": hours }),
        ),
    }
}

pub(super) fn tokens(paths: &Paths, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let client = Client::open(paths)?;
    match command {
        TokensCommand::Issue {
            account,
            name,
            expires_days,
        } => {
            let body = serde_json::json!({ "name": name, "expires_days": expires_days });
            let answer = client.post(&format!("/v1/people/{}/tokens", segment(&account)), &body)?;
            eprintln!("The token is shown once; only its digest is stored.");
            print_json(&answer)
        }
        TokensCommand::Revoke { id } => print_json(&client.call(
            http::Method::DELETE,
            &format!("/v1/tokens/{}", segment(&id)),
            None,
        )?),
    }
}
