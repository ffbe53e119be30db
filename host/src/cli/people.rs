//! `roster people` and `roster tokens`: accounts, roles and API tokens.
//!
//! On the data directory by default (the local operator acts as `local:<user>`, recorded in
//! the audit trail); with `--remote` through the running service's API, where the caller's
//! token decides what is allowed.

use std::process::ExitCode;

use clap::Subcommand;

use super::Paths;
use super::open_store;
use crate::server::people::{AccountChange, check_roles};
use crate::store::{Account, AccountKind};

/// `roster people` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// List accounts and their tokens (never the tokens themselves).
    List {
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
    },
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
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
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
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
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
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
    },
    /// Revoke a token by its id (`tok-...`).
    Revoke {
        /// The token's id.
        id: String,
        /// Ask the running service.
        #[arg(long)]
        remote: bool,
    },
}

/// Who the local operator is, for the audit trail.
pub(super) fn local_operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("local:{user}")
}

fn print(value: &serde_json::Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn people(paths: &Paths, command: PeopleCommand) -> anyhow::Result<ExitCode> {
    let by = local_operator();
    match command {
        PeopleCommand::List { remote: true } => {
            super::remote::print_api(&paths.config, http::Method::GET, "/v1/people", Vec::new())
        }
        PeopleCommand::List { remote: false } => {
            let store = open_store(paths)?;
            print(&serde_json::json!({
                "accounts": store.accounts()?,
                "tokens": store.tokens(None)?,
            }))
        }
        PeopleCommand::Add {
            id,
            service,
            name,
            roles,
            remote,
        } => {
            check_roles(&roles).map_err(anyhow::Error::msg)?;
            let kind = if service {
                AccountKind::Service
            } else {
                AccountKind::User
            };
            if remote {
                let body =
                    serde_json::json!({ "id": id, "kind": kind, "name": name, "roles": roles });
                return super::remote::print_api(
                    &paths.config,
                    http::Method::POST,
                    "/v1/people",
                    serde_json::to_vec(&body)?,
                );
            }
            let account = Account {
                id,
                kind,
                name,
                roles,
                disabled: false,
                created_at: 0,
                updated_at: 0,
            };
            let account = open_store(paths)?.create_account(account, &by)?;
            print(&serde_json::json!({ "account": account }))
        }
        PeopleCommand::Change {
            id,
            add,
            remove,
            disable,
            enable,
            remote,
        } => {
            let change = AccountChange {
                roles: None,
                add,
                remove,
                disabled: (disable || enable).then_some(disable),
            };
            change.check().map_err(anyhow::Error::msg)?;
            if remote {
                let body = serde_json::json!({
                    "add": change.add,
                    "remove": change.remove,
                    "disabled": change.disabled,
                });
                return super::remote::print_api(
                    &paths.config,
                    http::Method::PATCH,
                    &format!("/v1/people/{id}"),
                    serde_json::to_vec(&body)?,
                );
            }
            let account = open_store(paths)?
                .update_account(&id, &by, move |a| change.apply(a))?
                .ok_or_else(|| anyhow::anyhow!("no account `{id}`"))?;
            print(&serde_json::json!({ "account": account }))
        }
    }
}

pub(super) fn tokens(paths: &Paths, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let by = local_operator();
    match command {
        TokensCommand::Issue {
            account,
            name,
            expires_days,
            remote,
        } => {
            if remote {
                let body = serde_json::json!({ "name": name, "expires_days": expires_days });
                return super::remote::print_api(
                    &paths.config,
                    http::Method::POST,
                    &format!("/v1/people/{account}/tokens"),
                    serde_json::to_vec(&body)?,
                );
            }
            let store = open_store(paths)?;
            let expires = store.token_expiry(expires_days)?;
            let (info, token) = store.issue_token(&account, &name, expires, &by)?;
            eprintln!("The token is shown once; only its digest is stored.");
            print(&serde_json::json!({ "token": token, "info": info }))
        }
        TokensCommand::Revoke { id, remote } => {
            if remote {
                return super::remote::print_api(
                    &paths.config,
                    http::Method::DELETE,
                    &format!("/v1/tokens/{id}"),
                    Vec::new(),
                );
            }
            let revoked = open_store(paths)?
                .revoke_token(&id, &by)?
                .ok_or_else(|| anyhow::anyhow!("no token `{id}`"))?;
            print(&serde_json::json!({ "revoked": revoked }))
        }
    }
}
