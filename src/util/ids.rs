//! Conversation and event ids.
//!
//! Conversation ids are UUIDs: dashed lowercase in JSON, 32 lowercase hex
//! characters in directory names, `page_id`s and webhook URLs. Paths accept any
//! form Python's `uuid.UUID` parses (dashed, hex, braced, `urn:uuid:`).

use uuid::Uuid;

/// A fresh random id (UUID4).
pub fn new_uuid() -> Uuid {
    Uuid::new_v4()
}

/// The dashed lowercase form used in JSON bodies.
pub fn dashed(id: &Uuid) -> String {
    id.hyphenated().to_string()
}

/// The 32-hex form used on disk, in `page_id`s and in webhook URLs.
pub fn hex(id: &Uuid) -> String {
    id.simple().to_string()
}

/// A fresh event id: a dashed UUID4 string.
pub fn new_event_id() -> String {
    dashed(&new_uuid())
}

/// Parses a UUID in any of the forms Python accepts.
pub fn parse_uuid(text: &str) -> Result<Uuid, uuid::Error> {
    Uuid::parse_str(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_python_forms() {
        let dashed_form = "8889fa99-195d-48ad-8df3-a7ffe2b3801f";
        let id = parse_uuid(dashed_form).unwrap();
        assert_eq!(parse_uuid("8889FA99195D48AD8DF3A7FFE2B3801F").unwrap(), id);
        assert_eq!(
            parse_uuid("{8889fa99-195d-48ad-8df3-a7ffe2b3801f}").unwrap(),
            id
        );
        assert_eq!(
            parse_uuid("urn:uuid:8889fa99-195d-48ad-8df3-a7ffe2b3801f").unwrap(),
            id
        );
        assert_eq!(dashed(&id), dashed_form);
        assert_eq!(hex(&id), "8889fa99195d48ad8df3a7ffe2b3801f");
        assert!(parse_uuid("not-a-uuid").is_err());
    }
}
