//! The request a task serves: its id and path, for the answers and records it makes.

/// The request being served.
#[derive(Debug, Clone)]
pub struct Current {
    /// Its id.
    pub id: String,
    /// Its path.
    pub path: String,
}

tokio::task_local! {
    pub(super) static CURRENT: Current;
}

/// The request the calling task serves, if any.
pub fn current() -> Option<Current> {
    CURRENT.try_with(Current::clone).ok()
}
