//! What the command line says on stderr besides log events: progress (`serving …`, `stopping …`)
//! and hints. With `--log-format json` every such line is a JSON object shaped like the log
//! events (`timestamp`, `level`, `fields.message`, `target`), so that a log collector reads every
//! line.

use std::sync::OnceLock;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

static JSON: OnceLock<bool> = OnceLock::new();

/// Chooses JSON lines (once, at start).
pub(crate) fn use_json(json: bool) {
    let _first_choice_stays = JSON.set(json);
}

fn json() -> bool {
    JSON.get().copied().unwrap_or(false)
}

/// Says `message` on stderr: `jobhooks: {message}`, or a JSON line at `INFO`.
pub(crate) fn progress(message: &str) {
    say("INFO", &format!("jobhooks: {message}"), message);
}

/// A hint for a person on stderr: `({message})`, or a JSON line at `INFO`.
pub(crate) fn hint(message: &str) {
    say("INFO", &format!("({message})"), message);
}

/// A failure on stderr: `error: {message}` as given, or a JSON line at `ERROR` with its exit
/// status.
pub(crate) fn failure(message: &str, status: u8) {
    if json() {
        let text = message.strip_prefix("error: ").unwrap_or(message);
        eprintln!("{}", line("ERROR", text, Some(status)));
    } else {
        eprintln!("{message}");
    }
}

fn say(level: &str, text: &str, message: &str) {
    if json() { eprintln!("{}", line(level, message, None)) } else { eprintln!("{text}") }
}

fn line(level: &str, message: &str, status: Option<u8>) -> serde_json::Value {
    let timestamp = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    let mut fields = serde_json::json!({ "message": message });
    if let Some(status) = status {
        fields["status"] = status.into();
    }
    serde_json::json!({ "timestamp": timestamp, "level": level, "fields": fields, "target": "jobhooks" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_shaped_like_a_log_event() {
        let shown = line("ERROR", "no store", Some(2));
        assert_eq!(shown["level"], "ERROR");
        assert_eq!(shown["fields"], serde_json::json!({"message": "no store", "status": 2}));
        assert_eq!(shown["target"], "jobhooks");
        assert!(OffsetDateTime::parse(shown["timestamp"].as_str().unwrap(), &Rfc3339).is_ok());
    }
}
