//! Job hooks and job buttons as Nautobot's REST API exports them (`GET /api/extras/job-hooks/`,
//! `GET /api/extras/job-buttons/`, a page or a bare list), read as this crate's, each Nautobot job
//! mapped to the Rust receiver that replaces it.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::{JobButton, JobHook};

/// Which Rust receiver replaces which Nautobot job. A Nautobot job is named by its class path
/// (`module_name.job_class_name`, as `?depth=1` shows it), its name, or its id (all `?depth=0`
/// shows).
///
/// ```
/// use jobhooks_model::{JobMapping, json};
/// let mapping = JobMapping::from_json(&json!({"my_jobs.hooks.Audit": "app::jobs::Audit"})).unwrap();
/// assert_eq!(mapping.len(), 1);
/// assert!(JobMapping::from_json(&json!(["not", "a", "map"])).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobMapping {
    receivers: HashMap<String, String>,
}

impl JobMapping {
    /// A mapping from `(Nautobot job, Rust class path)` pairs.
    pub fn new(pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>) -> Self {
        Self { receivers: pairs.into_iter().map(|(from, to)| (from.into(), to.into())).collect() }
    }

    /// A mapping from a JSON object, `{"nautobot.class.Path": "rust::ReceiverPath"}`.
    pub fn from_json(json: &Value) -> Result<Self, NautobotCatalogError> {
        let Value::Object(pairs) = json else {
            return Err(NautobotCatalogError::Mapping(
                "a JSON object of Nautobot jobs to Rust receivers is required".into(),
            ));
        };
        let mut mapping = Self::default();
        for (from, to) in pairs {
            let Value::String(to) = to else {
                return Err(NautobotCatalogError::Mapping(format!("`{from}`: the receiver's class path is a string")));
            };
            mapping.add(from.clone(), to.clone());
        }
        Ok(mapping)
    }

    /// Maps `from` to `to` (replacing an earlier mapping of `from`).
    pub fn add(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.receivers.insert(from.into(), to.into());
    }

    /// How many Nautobot jobs it maps.
    pub fn len(&self) -> usize {
        self.receivers.len()
    }

    /// Whether it maps nothing.
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// The Rust receiver of the job a Nautobot record names, or why there is none.
    fn receiver_of(&self, job: Option<&Value>) -> Result<String, String> {
        let names = match job {
            Some(Value::String(name)) => vec![name.clone()],
            Some(Value::Object(job)) => job_names(job),
            _ => return Err("it names no job".into()),
        };
        names
            .iter()
            .find_map(|name| self.receivers.get(name))
            .cloned()
            .ok_or_else(|| format!("no receiver is mapped to its job ({})", names.join(", ")))
    }
}

/// The names a Nautobot job goes by in an export: its class path, name and id.
fn job_names(job: &Map<String, Value>) -> Vec<String> {
    let text = |field: &str| job.get(field).and_then(Value::as_str).filter(|text| !text.is_empty());
    let mut names = Vec::new();
    if let Some(class_path) = text("class_path") {
        names.push(class_path.to_owned());
    }
    if let (Some(module), Some(class)) = (text("module_name"), text("job_class_name")) {
        names.push(format!("{module}.{class}"));
    }
    names.extend(["name", "id"].into_iter().filter_map(text).map(str::to_owned));
    names
}

/// Why an export could not be read at all (nothing is imported).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NautobotCatalogError {
    /// The export is not a page of Nautobot's REST API nor a list of records.
    #[error(
        "not an export of Nautobot's REST API: a page ({{\"results\": [...]}}) or a list of job hooks and job buttons is required"
    )]
    NotAnExport,
    /// The mapping is not one.
    #[error("the job mapping is not valid: {0}")]
    Mapping(String),
}

/// A record the export holds that could not be read or mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unmapped {
    /// `job hook`, `job button` or `record`.
    pub kind: &'static str,
    /// Its name in Nautobot (empty if it has none).
    pub name: String,
    /// Why it was left out.
    pub reason: String,
}

/// What an export holds, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NautobotCatalog {
    /// The job hooks, each with its Rust receiver, its id kept.
    pub hooks: Vec<JobHook>,
    /// The job buttons, likewise.
    pub buttons: Vec<JobButton>,
    /// The records left out, and why.
    pub unmapped: Vec<Unmapped>,
}

/// Reads `export` (a page of Nautobot's REST API or a list of its records, job hooks and job
/// buttons mixed or apart), mapping each record's job with `mapping`.
///
/// ```
/// use jobhooks_model::{JobMapping, json, read_nautobot_catalog};
/// let export = json!({"count": 1, "next": null, "previous": null, "results": [{
///     "id": "0d9f9b5c-1f0e-4d1a-9a39-5d0b6c1b8f21", "object_type": "extras.jobhook",
///     "name": "audit devices", "content_types": ["dcim.device"], "enabled": true,
///     "type_create": true, "type_update": true, "type_delete": false,
///     "job": {"id": "5b1d…", "module_name": "my_jobs.hooks", "job_class_name": "Audit", "name": "Audit"},
/// }]});
/// let mapping = JobMapping::new([("my_jobs.hooks.Audit", "app::jobs::Audit")]);
/// let catalog = read_nautobot_catalog(&export, &mapping).unwrap();
/// assert_eq!(catalog.hooks[0].job, "app::jobs::Audit");
/// assert!(catalog.unmapped.is_empty());
/// ```
pub fn read_nautobot_catalog(export: &Value, mapping: &JobMapping) -> Result<NautobotCatalog, NautobotCatalogError> {
    let records = match export {
        Value::Array(records) => records,
        Value::Object(page) => match page.get("results") {
            Some(Value::Array(records)) => records,
            _ => return Err(NautobotCatalogError::NotAnExport),
        },
        _ => return Err(NautobotCatalogError::NotAnExport),
    };
    let mut catalog = NautobotCatalog::default();
    for record in records {
        let Value::Object(fields) = record else {
            catalog.unmapped.push(Unmapped { kind: "record", name: String::new(), reason: "not a JSON object".into() });
            continue;
        };
        let name = fields.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let Some(kind) = kind_of(fields) else {
            let reason = "neither a job hook nor a job button (no object_type, type_create or text)".into();
            catalog.unmapped.push(Unmapped { kind: "record", name, reason });
            continue;
        };
        let read = mapping.receiver_of(fields.get("job")).and_then(|receiver| {
            let mut fields = fields.clone();
            fields.insert("job".into(), Value::String(receiver));
            read_record(kind, fields, &mut catalog)
        });
        if let Err(reason) = read {
            catalog.unmapped.push(Unmapped { kind: kind.name(), name, reason });
        }
    }
    Ok(catalog)
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Hook,
    Button,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Hook => "job hook",
            Kind::Button => "job button",
        }
    }
}

fn kind_of(fields: &Map<String, Value>) -> Option<Kind> {
    match fields.get("object_type").and_then(Value::as_str) {
        Some("extras.jobhook") => Some(Kind::Hook),
        Some("extras.jobbutton") => Some(Kind::Button),
        Some(_) => None,
        None if ["type_create", "type_update", "type_delete"].iter().any(|field| fields.contains_key(*field)) => {
            Some(Kind::Hook)
        }
        None if fields.contains_key("text") => Some(Kind::Button),
        None => None,
    }
}

/// The fields this crate's records have; Nautobot's others (`url`, `display`, `notes_url`, …)
/// are left out.
const HOOK_FIELDS: &[&str] =
    &["id", "name", "content_types", "job", "enabled", "type_create", "type_update", "type_delete"];
const BUTTON_FIELDS: &[&str] =
    &["id", "name", "content_types", "text", "job", "weight", "group_name", "button_class", "confirmation", "enabled"];

fn read_record(kind: Kind, mut fields: Map<String, Value>, catalog: &mut NautobotCatalog) -> Result<(), String> {
    let known = match kind {
        Kind::Hook => HOOK_FIELDS,
        Kind::Button => BUTTON_FIELDS,
    };
    fields.retain(|field, _| known.contains(&field.as_str()));
    // Nautobot writes "no group" as an empty string.
    if fields.get("group_name").is_some_and(|group| group.as_str() == Some("")) {
        fields.insert("group_name".into(), Value::Null);
    }
    let fields = Value::Object(fields);
    match kind {
        Kind::Hook => catalog.hooks.push(serde_json::from_value(fields).map_err(|error| error.to_string())?),
        Kind::Button => catalog.buttons.push(serde_json::from_value(fields).map_err(|error| error.to_string())?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::ButtonClass;

    fn hook(name: &str, job: Value) -> Value {
        json!({
            "id": "0d9f9b5c-1f0e-4d1a-9a39-5d0b6c1b8f21", "object_type": "extras.jobhook", "display": name,
            "url": "https://nautobot.example/api/extras/job-hooks/0d9f9b5c-1f0e-4d1a-9a39-5d0b6c1b8f21/",
            "natural_slug": name, "name": name, "content_types": ["dcim.device"], "enabled": true,
            "type_create": false, "type_update": true, "type_delete": true, "job": job,
            "created": "2024-03-01T10:00:00.000000Z", "last_updated": "2024-03-01T10:00:00.000000Z",
            "notes_url": "https://nautobot.example/api/extras/job-hooks/0d9f9b5c-1f0e-4d1a-9a39-5d0b6c1b8f21/notes/",
        })
    }

    fn button(name: &str, job: Value) -> Value {
        json!({
            "id": "7a3b8c1d-2e4f-4a5b-9c6d-7e8f9a0b1c2d", "object_type": "extras.jobbutton", "display": name,
            "name": name, "content_types": ["dcim.device", "dcim.rack"], "text": "Sync {{ obj.name }}",
            "job": job, "weight": 50, "group_name": "", "button_class": "primary", "confirmation": true,
            "enabled": true, "notes_url": "…",
        })
    }

    #[test]
    fn hooks_and_buttons_are_read_with_their_ids_and_mapped_jobs() {
        let depth_one = json!({"id": "11111111-2222-4333-8444-555555555555", "module_name": "my_jobs.hooks",
            "job_class_name": "Audit", "name": "Audit devices", "grouping": "Hooks"});
        let depth_zero = json!({"id": "99999999-2222-4333-8444-555555555555", "object_type": "extras.job",
            "url": "https://nautobot.example/api/extras/jobs/99999999-2222-4333-8444-555555555555/"});
        let export = json!({"count": 3, "next": null, "previous": null, "results": [
            hook("audit", depth_one), button("sync", depth_zero.clone()), hook("unmapped", json!({"id": "00000000-0000-4000-8000-000000000000"})),
        ]});
        let mapping = JobMapping::new([
            ("my_jobs.hooks.Audit", "app::jobs::Audit"),
            ("99999999-2222-4333-8444-555555555555", "app::jobs::Sync"),
        ]);
        let catalog = read_nautobot_catalog(&export, &mapping).unwrap();
        let hook = &catalog.hooks[0];
        assert_eq!((hook.name.as_str(), hook.job.as_str()), ("audit", "app::jobs::Audit"));
        assert_eq!(hook.id.to_string(), "0d9f9b5c-1f0e-4d1a-9a39-5d0b6c1b8f21");
        assert!(hook.type_update && hook.type_delete && !hook.type_create);
        let button = &catalog.buttons[0];
        assert_eq!(
            (button.job.as_str(), button.button_class, &button.group_name),
            ("app::jobs::Sync", ButtonClass::Primary, &None)
        );
        assert_eq!((button.text.as_str(), button.content_types.len()), ("Sync {{ obj.name }}", 2));
        assert_eq!(catalog.unmapped.len(), 1);
        assert_eq!((catalog.unmapped[0].kind, catalog.unmapped[0].name.as_str()), ("job hook", "unmapped"));
        assert!(catalog.unmapped[0].reason.starts_with("no receiver is mapped to its job"), "{:?}", catalog.unmapped);
    }

    #[test]
    fn records_that_cannot_be_read_are_reported_not_dropped() {
        let mapping = JobMapping::new([("Audit", "app::jobs::Audit")]);
        let mut bad_type = hook("bad type", json!({"name": "Audit"}));
        bad_type["content_types"] = json!(["Not A Type"]);
        let export = json!([bad_type, 42, {"object_type": "dcim.device", "name": "sw1"}]);
        let catalog = read_nautobot_catalog(&export, &mapping).unwrap();
        let kinds: Vec<_> = catalog.unmapped.iter().map(|unmapped| (unmapped.kind, unmapped.name.as_str())).collect();
        assert_eq!(kinds, [("job hook", "bad type"), ("record", ""), ("record", "sw1")]);
        assert!(catalog.hooks.is_empty());
        for export in [json!(42), json!({"results": 1}), json!("x")] {
            assert_eq!(read_nautobot_catalog(&export, &mapping), Err(NautobotCatalogError::NotAnExport));
        }
    }

    proptest! {
        #[test]
        fn every_record_is_read_or_reported(names in proptest::collection::vec("[a-z]{1,8}", 0..20), mapped in any::<bool>()) {
            let records: Vec<Value> = names.iter().map(|name| hook(name, json!({"name": "Audit"}))).collect();
            let mapping = if mapped { JobMapping::new([("Audit", "app::jobs::Audit")]) } else { JobMapping::default() };
            let catalog = read_nautobot_catalog(&Value::Array(records), &mapping).unwrap();
            prop_assert_eq!(catalog.hooks.len() + catalog.unmapped.len(), names.len());
            prop_assert_eq!(catalog.unmapped.is_empty(), mapped || names.is_empty());
        }
    }
}
