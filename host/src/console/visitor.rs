//! The signed-in person a request comes from, and what the access policies let them do.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use super::Console;
use crate::governance::access::{Operation, Resource};
use crate::store::Account;

/// The signed-in person a request comes from.
pub(super) struct Visitor {
    pub(super) console: Console,
    /// The account the session acts as.
    pub(super) account: Account,
    /// The session's CSRF token.
    pub(super) csrf: String,
    /// The browser's address, carried to the API (its throttling counts per client).
    pub(super) peer: Option<ConnectInfo<SocketAddr>>,
}

impl Visitor {
    /// Whether the access policies let the visitor perform `operation` on `resource`.
    pub(super) fn may(&self, operation: Operation, resource: &Resource) -> bool {
        self.console
            .service
            .config()
            .access
            .decide(&self.account, operation, resource)
            .allowed
    }

    /// Whether the visitor may perform `operation` on the host as a whole.
    pub(super) fn may_host(&self, operation: Operation) -> bool {
        self.may(operation, &Resource::Host)
    }

    /// The domains of the installed workers in which the visitor may perform `operation`.
    pub(super) fn domains_where(&self, operation: Operation) -> Vec<String> {
        let mut domains: Vec<String> = self
            .console
            .service
            .workers()
            .values()
            .map(|w| w.config.manifest.plugin.domain.as_str().to_string())
            .collect();
        domains.sort();
        domains.dedup();
        domains.retain(|d| self.may(operation, &Resource::Domain(d.clone())));
        domains
    }

    /// A worker as the policies see it, if it is installed.
    pub(super) fn worker_resource(&self, worker: &str) -> Option<Resource> {
        self.console.service.worker_resource(worker).ok()
    }
}
