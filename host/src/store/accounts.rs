//! People, service accounts and their API tokens.
//!
//! An account has an id, a kind (a person or a service), and role grants such as `admin`
//! or `reviewer@revenue` (a role scoped to a domain). What a role may do is not decided
//! here but by the policy files (see [`crate::governance::access`]).
//!
//! A token is 32 random bytes shown once when issued (`rst_` + hex). Only its SHA-256
//! digest is stored: the store can recognise a token but never give one back. A token
//! has 256 bits of entropy, so a salted slow hash would add nothing.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::log::GovernanceEvent;
use super::{Store, StoreError, append_governance_in, decode, encode};

pub(crate) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// Tokens by the hex SHA-256 digest of the secret.
pub(crate) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

/// The prefix of every API token.
pub const TOKEN_PREFIX: &str = "rst_";

/// Whether an account is a person or a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AccountKind {
    /// A person.
    User,
    /// A program (CI, an integration).
    Service,
}

/// A user or service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    /// The id (for people, usually their email address).
    pub id: String,
    /// Person or program.
    pub kind: AccountKind,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// Role grants: `role` (host-wide) or `role@domain`.
    pub roles: Vec<String>,
    /// A disabled account's tokens are refused.
    #[serde(default)]
    pub disabled: bool,
    /// When it was created.
    pub created_at: i64,
    /// When it was last changed.
    pub updated_at: i64,
}

/// A token's stored description (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The token's id, for listing and revoking.
    pub id: String,
    /// The account it acts as.
    pub account: String,
    /// What it is for.
    pub name: String,
    /// When it was issued.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// The first characters of the token, to recognise it.
    pub hint: String,
}

/// The hex SHA-256 digest under which a token is stored.
pub fn token_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Account ids no account may take: `root` is what the audit trail names the bootstrap
/// token, `anonymous` a request without a token.
pub const RESERVED_IDS: &[&str] = &["root", "anonymous"];

/// The one form of an account id under which it is stored and compared: e-mail addresses
/// and other ids are case-insensitive, so `Ann@Example.com` is `ann@example.com`.
pub fn canonical_id(id: &str) -> String {
    id.trim().to_lowercase()
}

/// Checks a canonical account id: non-empty, printable, no spaces, not reserved.
fn check_id(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c));
    if !ok {
        return Err(StoreError::Invalid(format!(
            "account id `{id}`: use 1 to 200 letters, digits and . _ - @ +"
        )));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(StoreError::Invalid(format!(
            "account id `{id}` is reserved ({})",
            RESERVED_IDS.join(", ")
        )));
    }
    Ok(())
}

/// Whether an account is an enabled, host-wide admin.
fn manages(account: &Account) -> bool {
    !account.disabled && account.roles.iter().any(|r| r == "admin")
}

impl Store {
    /// Creates an account; an existing id is refused.
    /// The id is stored in its [`canonical_id`] form.
    pub fn create_account(&self, mut account: Account, by: &str) -> Result<Account, StoreError> {
        account.id = canonical_id(&account.id);
        check_id(&account.id)?;
        let now = self.clock.now_ms();
        let (store, by) = (self.clone(), by.to_string());
        self.write(move |tx| {
            let mut table = tx.open_table(ACCOUNTS)?;
            if table.get(account.id.as_str())?.is_some() {
                return Err(StoreError::Exists {
                    object: "account".into(),
                    id: account.id.clone(),
                });
            }
            let account = Account {
                created_at: now,
                updated_at: now,
                ..account.clone()
            };
            table.insert(account.id.as_str(), encode(&account).as_slice())?;
            drop(table);
            let event = GovernanceEvent {
                action: "account.create".into(),
                by: by.clone(),
                worker: None,
                subject: Some(account.id.clone()),
                reason: None,
                data: serde_json::json!({ "kind": account.kind, "roles": account.roles }),
            };
            append_governance_in(tx, &store, &event)?;
            Ok(account)
        })
    }

    /// Changes an account with `change`; `None` when there is no such account.
    pub fn update_account(
        &self,
        id: &str,
        by: &str,
        change: impl Fn(&mut Account) + Send + 'static,
    ) -> Result<Option<Account>, StoreError> {
        let (id, now) = (canonical_id(id), self.clock.now_ms());
        let (store, by) = (self.clone(), by.to_string());
        self.write(move |tx| {
            let mut table = tx.open_table(ACCOUNTS)?;
            let Some(mut account) = table
                .get(id.as_str())?
                .map(|v| decode::<Account>(&id, v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let before = account.clone();
            change(&mut account);
            account.updated_at = now;
            // Nobody may lock every person out: the last admin stays one.
            if manages(&before) && !manages(&account) {
                let mut others = false;
                for entry in table.iter()? {
                    let (k, v) = entry?;
                    if k.value() != id && manages(&decode::<Account>(k.value(), v.value())?) {
                        others = true;
                        break;
                    }
                }
                if !others {
                    return Err(StoreError::Invalid(format!(
                        "`{id}` is the last enabled admin: give another account `admin` first"
                    )));
                }
            }
            table.insert(id.as_str(), encode(&account).as_slice())?;
            drop(table);
            let event = GovernanceEvent {
                action: "account.change".into(),
                by: by.clone(),
                worker: None,
                subject: Some(id.clone()),
                reason: None,
                data: serde_json::json!({
                    "roles": { "before": before.roles, "after": account.roles },
                    "disabled": { "before": before.disabled, "after": account.disabled },
                }),
            };
            append_governance_in(tx, &store, &event)?;
            Ok(Some(account))
        })
    }

    /// One account.
    pub fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let id = canonical_id(id);
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ACCOUNTS)?;
        table
            .get(id.as_str())?
            .map(|v| decode(&id, v.value()))
            .transpose()
    }

    /// Every account, by id.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ACCOUNTS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// When a token issued now for `days` days expires: `None` for a token that does not
    /// expire; zero days (a token that would never work) and more than ten years are
    /// refused.
    pub fn token_expiry(&self, days: Option<u32>) -> Result<Option<i64>, StoreError> {
        const MAX_DAYS: u32 = 3650;
        match days {
            None => Ok(None),
            Some(d @ 1..=MAX_DAYS) => Ok(self
                .clock
                .now_ms()
                .checked_add(i64::from(d) * crate::clock::DAY_MS)),
            Some(d) => Err(StoreError::Invalid(format!(
                "expires_days {d}: a token lasts 1 to {MAX_DAYS} days (or omit it)"
            ))),
        }
    }

    /// Issues a token for an existing, enabled account; returns its description and the
    /// token, which is not stored and cannot be shown again.
    pub fn issue_token(
        &self,
        account: &str,
        name: &str,
        expires_at: Option<i64>,
        by: &str,
    ) -> Result<(TokenInfo, String), StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Writer(format!("no randomness for a token: {e}")))?;
        let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        let digest = token_digest(&secret);
        let info = TokenInfo {
            id: format!("tok-{}", &digest[..12]),
            account: canonical_id(account),
            name: name.to_string(),
            created_at: self.clock.now_ms(),
            expires_at,
            hint: secret[..TOKEN_PREFIX.len() + 4].to_string(),
        };
        let stored = info.clone();
        let (store, by) = (self.clone(), by.to_string());
        self.write(move |tx| {
            let accounts = tx.open_table(ACCOUNTS)?;
            match accounts.get(stored.account.as_str())? {
                Some(v) if !decode::<Account>(&stored.account, v.value())?.disabled => {}
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "no enabled account `{}`",
                        stored.account
                    )));
                }
            }
            drop(accounts);
            tx.open_table(TOKENS)?
                .insert(digest.as_str(), encode(&stored).as_slice())?;
            let event = GovernanceEvent {
                action: "token.issue".into(),
                by: by.clone(),
                worker: None,
                subject: Some(stored.id.clone()),
                reason: None,
                data: serde_json::json!({ "account": stored.account, "name": stored.name }),
            };
            append_governance_in(tx, &store, &event)?;
            Ok(())
        })?;
        Ok((info, secret))
    }

    /// Revokes a token by id; whether there was one.
    pub fn revoke_token(&self, id: &str, by: &str) -> Result<Option<TokenInfo>, StoreError> {
        let id = id.to_string();
        let (store, by) = (self.clone(), by.to_string());
        self.write(move |tx| {
            let mut table = tx.open_table(TOKENS)?;
            let mut found = None;
            for item in table.iter()? {
                let (k, v) = item?;
                let info: TokenInfo = decode(k.value(), v.value())?;
                if info.id == id {
                    found = Some((k.value().to_string(), info));
                    break;
                }
            }
            if let Some((digest, info)) = &found {
                table.remove(digest.as_str())?;
                drop(table);
                let event = GovernanceEvent {
                    action: "token.revoke".into(),
                    by: by.clone(),
                    worker: None,
                    subject: Some(info.id.clone()),
                    reason: None,
                    data: serde_json::json!({ "account": info.account }),
                };
                append_governance_in(tx, &store, &event)?;
            }
            Ok(found.map(|(_, info)| info))
        })
    }

    /// Every token's description (of one account, or all).
    pub fn tokens(&self, account: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TOKENS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let info: TokenInfo = decode(k.value(), v.value())?;
            if account.is_none_or(|a| canonical_id(a) == info.account) {
                out.push(info);
            }
        }
        out.sort_by(|a, b| (&a.account, a.created_at).cmp(&(&b.account, b.created_at)));
        Ok(out)
    }

    /// The enabled account a token acts as, if the token is known and not expired.
    pub fn authenticate(&self, secret: &str) -> Result<Option<(Account, TokenInfo)>, StoreError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = token_digest(secret);
        let tx = self.db.begin_read()?;
        let Some(info) = tx
            .open_table(TOKENS)?
            .get(digest.as_str())?
            .map(|v| decode::<TokenInfo>(&digest, v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        if info.expires_at.is_some_and(|t| t <= self.clock.now_ms()) {
            return Ok(None);
        }
        let account = tx
            .open_table(ACCOUNTS)?
            .get(info.account.as_str())?
            .map(|v| decode::<Account>(&info.account, v.value()))
            .transpose()?;
        Ok(account.filter(|a| !a.disabled).map(|a| (a, info)))
    }
}
