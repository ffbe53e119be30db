//! How record changes, signals, schedules and dates become queue items.

use super::*;

pub(super) fn item(
    worker: &str,
    trigger: usize,
    event: EventInput,
    due_at: i64,
    now: i64,
) -> QueueItem {
    QueueItem {
        seq: 0,
        worker: worker.to_string(),
        trigger,
        event,
        due_at,
        accepted_at: now,
        attempt: 0,
        fallback_for: None,
        cause: None,
    }
}

/// The records of a scan: those the worker's principal may see, up to the limit.
pub(super) fn scan_ids(shared: &Shared, worker: &str, object: &str, limit: usize) -> Vec<String> {
    let Some(w) = shared.workers().get(worker).cloned() else {
        return Vec::new();
    };
    let query = RecordQuery {
        object: object.to_string(),
        filters: simple_filters(&w.config.conditions),
        owners: shared
            .runtime
            .directory()
            .visible_owners(&w.config.grant.grant.principal),
        limit,
    };
    shared
        .store
        .query(&query)
        .map(|records| records.into_iter().map(|r| r.id).collect())
        .unwrap_or_default()
}

/// The field filters at the top level of a worker's conditions, which a scan can give the
/// query planner (every condition is still checked before the worker runs).
pub(super) fn simple_filters(c: &crate::trigger::condition::Condition) -> Vec<Filter> {
    use crate::trigger::condition::Condition;
    match c {
        Condition::Field(f) => vec![f.clone()],
        Condition::All(items) => items
            .iter()
            .filter_map(|c| match c {
                Condition::Field(f) => Some(f.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The items one record change produces.
pub(super) fn change_items(
    shared: &Shared,
    tx: &redb::WriteTransaction,
    change: &Change,
) -> Result<Vec<QueueItem>, StoreError> {
    let mut items = Vec::new();
    for (name, w) in shared.workers().iter() {
        if w.removing() {
            continue;
        }
        if change.actor == format!("worker:{}", w.config.manifest.plugin.id) {
            // A worker's own writes do not trigger it again.
            continue;
        }
        let principal = &w.config.grant.grant.principal;
        if !shared
            .runtime
            .directory()
            .can_see(principal, &change.record)
        {
            continue;
        }
        for (i, t) in w.config.triggers.iter().enumerate() {
            if t.kind.object() != Some(change.object.as_str()) {
                continue;
            }
            let changes: Vec<ChangeInput> = change
                .changes
                .iter()
                .map(|c| ChangeInput {
                    field: c.field.clone(),
                    old: c.old.clone(),
                    new: c.new.clone(),
                })
                .collect();
            let trigger = match &t.kind {
                TriggerKind::RecordCreated { .. } if change.kind == ChangeKind::Created => {
                    TriggerInput::RecordCreated
                }
                TriggerKind::RecordUpdated { fields, .. }
                    if change.kind == ChangeKind::Updated
                        && (fields.is_empty()
                            || change.changes.iter().any(|c| fields.contains(&c.field))) =>
                {
                    TriggerInput::RecordUpdated { changes }
                }
                TriggerKind::RecordDeleted { .. } if change.kind == ChangeKind::Deleted => {
                    TriggerInput::RecordDeleted
                }
                TriggerKind::Threshold {
                    object,
                    field,
                    above,
                    below,
                    aggregate: Some(agg),
                } => {
                    for group in affected_groups(change, agg) {
                        let Some(value) = aggregate_value(shared, w, object, field, agg, &group)?
                        else {
                            continue;
                        };
                        let key = format!("aggregate\u{1f}{name}\u{1f}{i}\u{1f}{group}");
                        let inside =
                            inside_threshold(*above, *below, Some(&FieldValue::Number(value)));
                        let was_inside = state_in(tx, &key)?.as_deref() == Some("in");
                        set_state_in(tx, &key, if inside { "in" } else { "out" })?;
                        if inside && !was_inside {
                            let event = EventInput {
                                id: Some(format!("change-{}/{name}/{i}/{group}", change.seq)),
                                trigger: TriggerInput::Threshold {
                                    name: t.label.clone(),
                                },
                                object: None,
                                record_id: None,
                                payload: Some({
                                    // With the region it entered, so one worker with
                                    // several thresholds knows which was crossed.
                                    let mut p =
                                        serde_json::json!({ "group": group, "value": value });
                                    if let Some(a) = above {
                                        p["above"] = serde_json::json!(a);
                                    }
                                    if let Some(b) = below {
                                        p["below"] = serde_json::json!(b);
                                    }
                                    p
                                }),
                                occurred_at: Some(change.at),
                            };
                            items.push(item(name, i, event, change.at + t.delay, change.at));
                        }
                    }
                    continue;
                }
                TriggerKind::Threshold {
                    field,
                    above,
                    below,
                    ..
                } if change.kind != ChangeKind::Deleted => {
                    let key = format!(
                        "threshold\u{1f}{name}\u{1f}{i}\u{1f}{}/{}",
                        change.object, change.id
                    );
                    let inside = inside_threshold(*above, *below, change.record.fields.get(field));
                    let was_inside = state_in(tx, &key)?.as_deref() == Some("in");
                    set_state_in(tx, &key, if inside { "in" } else { "out" })?;
                    if !inside || was_inside {
                        continue;
                    }
                    TriggerInput::Threshold {
                        name: t.label.clone(),
                    }
                }
                _ => continue,
            };
            let event = EventInput {
                id: Some(format!("change-{}/{name}/{i}", change.seq)),
                trigger,
                object: Some(change.object.clone()),
                record_id: Some(change.id.clone()),
                payload: None,
                occurred_at: Some(change.at),
            };
            items.push(item(name, i, event, change.at + t.delay, change.at));
        }
    }
    Ok(items)
}

/// The groups a change may have moved an aggregate in: the record's group before and after.
pub(super) fn affected_groups(
    change: &Change,
    agg: &crate::trigger::Aggregate,
) -> BTreeSet<String> {
    let as_group = |v: &FieldValue| match v {
        FieldValue::Null => None,
        FieldValue::Text(t) => Some(t.clone()),
        other => serde_json::to_string(other).ok(),
    };
    let Some(by) = &agg.group_by else {
        return BTreeSet::from(["*".to_string()]);
    };
    let mut groups = BTreeSet::new();
    let now = if by == "owner" {
        change.record.owner.clone()
    } else {
        change.record.fields.get(by).and_then(as_group)
    };
    groups.extend(now);
    if let Some(c) = change.changes.iter().find(|c| &c.field == by) {
        groups.extend(as_group(&c.old));
    }
    groups
}

/// The aggregate over one group of the records the worker's principal may see; `None` when
/// the principal may not see the group.
pub(super) fn aggregate_value(
    shared: &Shared,
    w: &Installed,
    object: &str,
    field: &str,
    agg: &crate::trigger::Aggregate,
    group: &str,
) -> Result<Option<f64>, StoreError> {
    let visible = shared
        .runtime
        .directory()
        .visible_owners(&w.config.grant.grant.principal);
    let mut filters = agg.filters.clone();
    let owners = match agg.group_by.as_deref() {
        Some("owner") => {
            if visible
                .as_ref()
                .is_some_and(|v| !v.iter().any(|o| o == group))
            {
                return Ok(None);
            }
            Some(vec![group.to_string()])
        }
        Some(by) => {
            filters.push(Filter {
                field: by.to_string(),
                op: crate::filter::Op::Equals,
                value: serde_json::from_str(group)
                    .unwrap_or_else(|_| FieldValue::Text(group.to_string())),
            });
            visible
        }
        None => visible,
    };
    let records = shared.store.query(&RecordQuery {
        object: object.to_string(),
        filters,
        owners,
        limit: usize::MAX,
    })?;
    Ok(Some(agg.value(field, &records)))
}
