//! The schemas of the OpenAPI document, taken from the Rust types the API reads and
//! writes (`utoipa::ToSchema`), so the document cannot say other than the code does.
//!
//! A route names its body and answer as types ([`ApiSchema::of`]). The forms every
//! resource shares are derived from its types here, once: a list page of an item, the
//! create body of a spec (the spec plus an optional `id`), the merge patch of a spec
//! (the spec with nothing required).

use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// Where the schemas live in the document.
const PREFIX: &str = "#/components/schemas/";

/// A schema a route refers to, and how to put it (and what it refers to) in the
/// document's components.
#[derive(Debug, Clone)]
pub struct ApiSchema {
    pub name: String,
    add: fn(&mut Map<String, Value>),
    /// Not JSON (the Prometheus exposition): the media type it is served as.
    pub media_type: &'static str,
}

impl ApiSchema {
    /// The schema of `T`.
    pub fn of<T: ToSchema>() -> Self {
        ApiSchema {
            name: T::name().into_owned(),
            add: add::<T>,
            media_type: "application/json",
        }
    }

    /// A page of `T`s: `{ items, next_cursor }`.
    pub fn list_of<T: ToSchema>() -> Self {
        ApiSchema {
            name: format!("{}List", T::name()),
            add: add_list::<T>,
            media_type: "application/json",
        }
    }

    /// What creates a `T`: its fields and, optionally, the new row's `id`.
    pub fn create_of<T: ToSchema>() -> Self {
        ApiSchema {
            name: format!("{}Create", T::name()),
            add: add_create::<T>,
            media_type: "application/json",
        }
    }

    /// A JSON merge patch (RFC 7396) of a `T`: any of its fields.
    pub fn patch_of<T: ToSchema>() -> Self {
        ApiSchema {
            name: format!("{}Patch", T::name()),
            add: add_patch::<T>,
            media_type: "application/json",
        }
    }

    /// What creates a `T` when the body carries more than `T`'s fields: `Extra`'s fields
    /// (a new row's key, a password, a secret) beside them.
    pub fn create_with<T: ToSchema, Extra: ToSchema>() -> Self {
        ApiSchema {
            name: format!("{}Create", T::name()),
            add: add_create_with::<T, Extra>,
            media_type: "application/json",
        }
    }

    /// A merge patch of a `T` that may also carry `Extra`'s fields.
    pub fn patch_with<T: ToSchema, Extra: ToSchema>() -> Self {
        ApiSchema {
            name: format!("{}Patch", T::name()),
            add: add_patch_with::<T, Extra>,
            media_type: "application/json",
        }
    }

    /// `T` served as another media type than JSON.
    pub fn served_as<T: ToSchema>(media_type: &'static str) -> Self {
        ApiSchema {
            media_type,
            ..Self::of::<T>()
        }
    }

    /// Puts this schema and every schema it refers to into `components`.
    pub fn add_to(&self, components: &mut Map<String, Value>) {
        (self.add)(components);
    }

    /// A reference to it.
    pub fn reference(&self) -> Value {
        reference(&self.name)
    }
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{PREFIX}{name}") })
}

/// `T`'s schema as JSON; a schema always serialises.
fn schema_json<T: ToSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or(Value::Null)
}

fn add<T: ToSchema>(components: &mut Map<String, Value>) {
    put(components, T::name().into_owned(), schema_json::<T>());
    let mut referred = Vec::new();
    T::schemas(&mut referred);
    for (name, schema) in referred {
        put(
            components,
            name,
            serde_json::to_value(schema).unwrap_or(Value::Null),
        );
    }
}

/// Adds a schema once. Two types of one name would make one of them lie about the
/// other: in tests (debug builds) that stops the document; give one `#[schema(as = ..)]`.
fn put(components: &mut Map<String, Value>, name: String, schema: Value) {
    match components.get(&name) {
        Some(existing) => debug_assert!(
            *existing == schema,
            "two different types are named {name} in the OpenAPI document"
        ),
        None => {
            components.insert(name, schema);
        }
    }
}

fn add_list<T: ToSchema>(components: &mut Map<String, Value>) {
    add::<T>(components);
    components.insert(
        format!("{}List", T::name()),
        json!({
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": { "type": "array", "items": reference(&T::name()) },
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last page",
                },
            },
        }),
    );
}

fn add_create<T: ToSchema>(components: &mut Map<String, Value>) {
    add::<T>(components);
    let mut schema = schema_json::<T>();
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "id".into(),
            json!({
                "type": "string",
                "pattern": "^[A-Za-z0-9._:@-]{1,128}$",
                "description": "Optional: a UUID is assigned when absent",
            }),
        );
    }
    components.insert(format!("{}Create", T::name()), schema);
}

fn add_patch<T: ToSchema>(components: &mut Map<String, Value>) {
    add::<T>(components);
    let mut schema = schema_json::<T>();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("required");
        obj.insert(
            "description".into(),
            json!("JSON merge patch (RFC 7396): given members replace, null resets a member to its default"),
        );
    }
    components.insert(format!("{}Patch", T::name()), schema);
}

/// `T`'s schema with `Extra`'s properties (and, when `required`, its required list)
/// merged in.
fn merged<T: ToSchema, Extra: ToSchema>(
    components: &mut Map<String, Value>,
    required: bool,
) -> Value {
    add::<T>(components);
    add::<Extra>(components);
    let mut schema = schema_json::<T>();
    let extra = schema_json::<Extra>();
    if let (Some(obj), Some(more)) = (schema.as_object_mut(), extra.as_object()) {
        if let Some(props) = more.get("properties").and_then(Value::as_object) {
            let target = obj
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(target) = target {
                target.extend(props.clone());
            }
        }
        if required && let Some(req) = more.get("required").and_then(Value::as_array) {
            let target = obj.entry("required").or_insert_with(|| json!([]));
            if let Some(target) = target.as_array_mut() {
                target.extend(req.iter().cloned());
            }
        }
    }
    schema
}

fn add_create_with<T: ToSchema, Extra: ToSchema>(components: &mut Map<String, Value>) {
    let schema = merged::<T, Extra>(components, true);
    components.insert(format!("{}Create", T::name()), schema);
}

fn add_patch_with<T: ToSchema, Extra: ToSchema>(components: &mut Map<String, Value>) {
    let mut schema = merged::<T, Extra>(components, false);
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("required");
        obj.insert(
            "description".into(),
            json!("JSON merge patch (RFC 7396): given members replace, null resets a member to its default"),
        );
    }
    components.insert(format!("{}Patch", T::name()), schema);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec as resources have them.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[allow(dead_code)]
    struct WidgetSpec {
        name: String,
        colour: ispvm_proto::DeviceRole,
    }

    #[test]
    fn derived_forms_come_from_the_type() {
        let mut c = Map::new();
        for s in [
            ApiSchema::list_of::<WidgetSpec>(),
            ApiSchema::create_of::<WidgetSpec>(),
            ApiSchema::patch_of::<WidgetSpec>(),
        ] {
            s.add_to(&mut c);
        }
        assert_eq!(c["WidgetSpec"]["required"], json!(["name", "colour"]));
        // What the spec refers to comes along.
        assert!(
            c["DeviceRole"]["enum"]
                .as_array()
                .is_some_and(|e| e.contains(&json!("core")))
        );
        assert_eq!(
            c["WidgetSpecList"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/WidgetSpec"
        );
        assert!(c["WidgetSpecCreate"]["properties"]["id"].is_object());
        assert!(c["WidgetSpecPatch"].get("required").is_none());
        assert!(c["WidgetSpecPatch"]["properties"]["name"].is_object());
    }
}
