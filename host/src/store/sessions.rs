//! Console sign-in: one-time login codes and the sessions they (or an API token) open.
//! Only digests of the secrets are stored, so reading the store gives no one a way in.
//! Issuing a code, signing in and signing out are entries in the audit chain.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::accounts::{ACCOUNTS, token_digest};
use super::audit::append_governance_in;
use super::log::GovernanceEvent;
use super::{Store, StoreError, decode, encode};

/// Sessions by the digest of their secret.
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("console_sessions");
/// One-time login codes by the digest of the code.
pub(crate) const LOGIN_CODES: TableDefinition<&str, &[u8]> = TableDefinition::new("login_codes");

/// What a session's secret starts with.
pub const SESSION_PREFIX: &str = "rss_";
/// What a login code starts with.
pub const LOGIN_CODE_PREFIX: &str = "rlc_";

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The account it acts as.
    pub account: String,
    /// The digest of the API token it was opened with, if one was: the session ends when
    /// the token stops working.
    pub token: Option<String>,
    /// The token every state-changing form of the session carries.
    pub csrf: String,
    /// When it was opened.
    pub created_at: i64,
    /// When it ends.
    pub expires_at: i64,
}

/// A one-time login code as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LoginCode {
    account: String,
    by: String,
    expires_at: i64,
}

fn secret(prefix: &str) -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

fn governance(action: &str, by: &str, subject: &str, data: serde_json::Value) -> GovernanceEvent {
    GovernanceEvent {
        action: action.into(),
        by: by.into(),
        worker: None,
        subject: Some(subject.into()),
        reason: None,
        data,
    }
}

/// Removes the expired rows of a table of entries with an `expires_at`.
fn prune_in(
    tx: &WriteTransaction,
    table: TableDefinition<&str, &[u8]>,
    now: i64,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(table)?;
    let expired: Vec<String> = t
        .iter()?
        .filter_map(Result::ok)
        .filter(|(_, v)| {
            serde_json::from_slice::<serde_json::Value>(v.value())
                .ok()
                .and_then(|v| v["expires_at"].as_i64())
                .is_none_or(|at| at <= now)
        })
        .map(|(k, _)| k.value().to_string())
        .collect();
    for key in expired {
        t.remove(key.as_str())?;
    }
    Ok(())
}

impl Store {
    /// Issues a one-time login code for `account`, valid for `ttl_ms`; returns the code.
    pub fn issue_login_code(
        &self,
        account: &str,
        ttl_ms: i64,
        by: &str,
    ) -> Result<(String, i64), StoreError> {
        let code = secret(LOGIN_CODE_PREFIX)?;
        let digest = token_digest(&code);
        let expires_at = self.clock.now_ms().saturating_add(ttl_ms.max(0));
        let (account, by) = (account.to_string(), by.to_string());
        let store = self.clone();
        self.write(move |tx| {
            let known = tx
                .open_table(ACCOUNTS)?
                .get(account.as_str())?
                .map(|v| decode::<super::Account>(&account, v.value()))
                .transpose()?;
            match known {
                Some(a) if !a.disabled => {}
                Some(_) => {
                    return Err(StoreError::Invalid(format!(
                        "account `{account}` is disabled"
                    )));
                }
                None => return Err(StoreError::Invalid(format!("no account `{account}`"))),
            }
            prune_in(tx, LOGIN_CODES, store.clock.now_ms())?;
            let row = LoginCode {
                account: account.clone(),
                by: by.clone(),
                expires_at,
            };
            tx.open_table(LOGIN_CODES)?
                .insert(digest.as_str(), encode(&row).as_slice())?;
            let event = governance(
                "login-link.issue",
                &by,
                &account,
                serde_json::json!({ "expires_at": expires_at }),
            );
            append_governance_in(tx, &store, &event)?;
            Ok(())
        })?;
        Ok((code, expires_at))
    }

    /// Uses up a login code: the account it signs in, once, if it has not expired.
    pub fn redeem_login_code(&self, code: &str) -> Result<Option<String>, StoreError> {
        if !code.starts_with(LOGIN_CODE_PREFIX) {
            return Ok(None);
        }
        let digest = token_digest(code);
        let now = self.clock.now_ms();
        self.write(move |tx| {
            let Some(row) = tx
                .open_table(LOGIN_CODES)?
                .remove(digest.as_str())?
                .map(|v| decode::<LoginCode>("login code", v.value()))
            else {
                return Ok(None);
            };
            let row = row?;
            Ok((row.expires_at > now).then_some(row.account))
        })
    }

    /// Opens a session for `account` until `expires_at`; returns its secret and the
    /// session. `how` says how the person signed in (for the audit trail).
    pub fn start_session(
        &self,
        account: &str,
        token: Option<String>,
        expires_at: i64,
        how: &str,
    ) -> Result<(String, Session), StoreError> {
        let id = secret(SESSION_PREFIX)?;
        let session = Session {
            account: account.to_string(),
            token,
            csrf: secret("")?,
            created_at: self.clock.now_ms(),
            expires_at,
        };
        let digest = token_digest(&id);
        let (row, how) = (session.clone(), how.to_string());
        let store = self.clone();
        self.write(move |tx| {
            prune_in(tx, SESSIONS, store.clock.now_ms())?;
            tx.open_table(SESSIONS)?
                .insert(digest.as_str(), encode(&row).as_slice())?;
            let event = governance(
                "session.start",
                &row.account,
                &row.account,
                serde_json::json!({ "with": how, "expires_at": row.expires_at }),
            );
            append_governance_in(tx, &store, &event)?;
            Ok(())
        })?;
        Ok((id, session))
    }

    /// The session a secret opens, if it has not ended.
    pub fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        if !id.starts_with(SESSION_PREFIX) {
            return Ok(None);
        }
        let digest = token_digest(id);
        let tx = self.db.begin_read()?;
        let session = tx
            .open_table(SESSIONS)?
            .get(digest.as_str())?
            .map(|v| decode::<Session>("session", v.value()))
            .transpose()?;
        Ok(session.filter(|s| s.expires_at > self.clock.now_ms()))
    }

    /// Ends a session (signing out); whether it was open.
    pub fn end_session(&self, id: &str) -> Result<bool, StoreError> {
        let digest = token_digest(id);
        let store = self.clone();
        self.write(move |tx| {
            let Some(row) = tx
                .open_table(SESSIONS)?
                .remove(digest.as_str())?
                .map(|v| decode::<Session>("session", v.value()))
            else {
                return Ok(false);
            };
            let row = row?;
            let event = governance(
                "session.end",
                &row.account,
                &row.account,
                serde_json::json!({}),
            );
            append_governance_in(tx, &store, &event)?;
            Ok(true)
        })
    }

    /// Whether the API token with this digest still works (known and not expired).
    pub fn token_valid(&self, digest: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        let info = tx
            .open_table(super::accounts::TOKENS)?
            .get(digest)?
            .map(|v| decode::<super::TokenInfo>(digest, v.value()))
            .transpose()?;
        Ok(info.is_some_and(|i| i.expires_at.is_none_or(|t| t > self.clock.now_ms())))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock as _, HOUR_MS, ManualClock};
    use crate::schema::Schema;
    use crate::store::{Account, AccountKind};

    #[test]
    fn a_login_code_works_once_before_it_expires_and_a_session_ends() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = Store::open_with(
            &dir.path().join("db.redb"),
            Schema::standard(),
            clock.clone(),
        )
        .unwrap();
        let account = Account {
            id: "rita@example.com".into(),
            kind: AccountKind::User,
            name: "Rita".into(),
            roles: vec!["reviewer@revenue".into()],
            disabled: false,
            created_at: 0,
            updated_at: 0,
        };
        store.create_account(account, "admin").unwrap();
        assert!(store.issue_login_code("nobody", HOUR_MS, "admin").is_err());

        let (code, expires) = store
            .issue_login_code("rita@example.com", HOUR_MS, "admin")
            .unwrap();
        assert_eq!(expires, 1_000_000 + HOUR_MS);
        assert_eq!(store.redeem_login_code("rlc_wrong").unwrap(), None);
        assert_eq!(store.redeem_login_code("not a code").unwrap(), None);
        assert_eq!(
            store.redeem_login_code(&code).unwrap().as_deref(),
            Some("rita@example.com")
        );
        assert_eq!(store.redeem_login_code(&code).unwrap(), None, "once only");

        let (late, _) = store
            .issue_login_code("rita@example.com", HOUR_MS, "admin")
            .unwrap();
        clock.advance(HOUR_MS);
        assert_eq!(store.redeem_login_code(&late).unwrap(), None, "expired");

        let now = clock.now_ms();
        let (secret, session) = store
            .start_session("rita@example.com", None, now + HOUR_MS, "login link")
            .unwrap();
        assert!(secret.starts_with(SESSION_PREFIX));
        assert_eq!(store.session(&secret).unwrap(), Some(session.clone()));
        assert_eq!(store.session("rss_other").unwrap(), None);
        clock.advance(HOUR_MS);
        assert_eq!(store.session(&secret).unwrap(), None, "expired");
        clock.set(now);
        assert!(store.end_session(&secret).unwrap());
        assert_eq!(store.session(&secret).unwrap(), None);
        assert!(!store.end_session(&secret).unwrap());

        // Issuing, signing in and out are in the audit trail.
        let actions: Vec<String> = store
            .audit_search(&crate::store::AuditQuery::default(), 100)
            .unwrap()
            .iter()
            .filter_map(|e| {
                e.report.as_ref()?["governance"]["action"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        for wanted in ["login-link.issue", "session.start", "session.end"] {
            assert!(actions.iter().any(|a| a == wanted), "{actions:?}");
        }
    }
}
