//! Input rules shared by every inventory resource. They match the ingest contract's
//! (`ispvm_proto::codec`): ids are short and URL-safe, names are printable and bounded.

use super::CatalogError;

/// Longest id (device key, site id, ...), as in the ingest limits.
pub const MAX_ID_LEN: usize = 128;
/// Longest display name.
pub const MAX_NAME_LEN: usize = 200;
/// Longest free text (descriptions, comments).
pub const MAX_TEXT_LEN: usize = 4000;
/// Most tags on one device.
pub const MAX_TAGS: usize = 32;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 64;

/// Ids: non-empty, bounded, `[A-Za-z0-9._:@-]` (safe in URLs, logs and storage keys).
pub fn id(field: &str, value: &str) -> Result<(), CatalogError> {
    if value.is_empty() {
        return Err(CatalogError::invalid(field, "is empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(CatalogError::invalid(
            field,
            format!("is {} bytes, over {MAX_ID_LEN}", value.len()),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@')))
    {
        return Err(CatalogError::invalid(
            field,
            format!("contains {c:?}; ids use letters, digits and . _ - : @"),
        ));
    }
    Ok(())
}

/// A name shown to people: non-empty, bounded, no control characters.
pub fn name(field: &str, value: &str) -> Result<(), CatalogError> {
    if value.trim().is_empty() {
        return Err(CatalogError::invalid(field, "is empty"));
    }
    bounded(field, value, MAX_NAME_LEN)
}

/// A router-chosen name (interface): like [`name`], up to the id length.
pub fn router_name(field: &str, value: &str) -> Result<(), CatalogError> {
    if value.is_empty() {
        return Err(CatalogError::invalid(field, "is empty"));
    }
    bounded(field, value, MAX_ID_LEN)
}

/// Free text that may be empty: bounded, no control characters but newline and tab.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), CatalogError> {
    if value.len() > max {
        return Err(CatalogError::invalid(
            field,
            format!("is {} bytes, over {max}", value.len()),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(CatalogError::invalid(field, "contains a control character"));
    }
    Ok(())
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), CatalogError> {
    if value.len() > max {
        return Err(CatalogError::invalid(
            field,
            format!("is {} bytes, over {max}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CatalogError::invalid(field, "contains a control character"));
    }
    Ok(())
}

/// A tag: `[A-Za-z0-9._:=/-]`, up to [`MAX_TAG_LEN`] bytes.
pub fn tag(field: &str, value: &str) -> Result<(), CatalogError> {
    if value.is_empty() || value.len() > MAX_TAG_LEN {
        return Err(CatalogError::invalid(
            field,
            format!("tags are 1 to {MAX_TAG_LEN} bytes"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '=' | '/')))
    {
        return Err(CatalogError::invalid(
            field,
            format!("contains {c:?}; tags use letters, digits and . _ - : = /"),
        ));
    }
    Ok(())
}

/// Validates a tag list, then sorts it and drops duplicates.
pub fn tags(field: &str, values: &mut Vec<String>) -> Result<(), CatalogError> {
    for t in values.iter() {
        tag(field, t)?;
    }
    values.sort();
    values.dedup();
    if values.len() > MAX_TAGS {
        return Err(CatalogError::invalid(
            field,
            format!("has {} tags, over {MAX_TAGS}", values.len()),
        ));
    }
    Ok(())
}

/// Validates a list of ids, then sorts it and drops duplicates.
pub fn ids(field: &str, values: &mut Vec<String>, max: usize) -> Result<(), CatalogError> {
    for v in values.iter() {
        id(field, v)?;
    }
    values.sort();
    values.dedup();
    if values.len() > max {
        return Err(CatalogError::invalid(
            field,
            format!("has {} entries, over {max}", values.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_bounded() {
        assert!(id("id", "core-1.pop:a@b_c").is_ok());
        assert!(id("id", "").is_err());
        assert!(id("id", "a/b").is_err());
        assert!(id("id", "a b").is_err());
        assert!(id("id", &"x".repeat(129)).is_err());
        assert!(name("name", "  ").is_err());
        assert!(name("name", "Core 1 — Beirut").is_ok());
        assert!(text("c", "line\nline", 100).is_ok());
        assert!(text("c", "bell\u{7}", 100).is_err());
        let mut t = vec!["b".to_owned(), "a".to_owned(), "b".to_owned()];
        tags("tags", &mut t).expect("tags");
        assert_eq!(t, ["a", "b"]);
        assert!(tag("tags", "a b").is_err());
    }
}
