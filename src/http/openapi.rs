//! `/openapi.json`: an OpenAPI 3.1 document generated from the route table,
//! in FastAPI's layout (operation ids, `422` responses, `HTTPValidationError`).

use serde_json::{json, Map, Value};

use super::router::{Access, Route, RouteTable};

/// The document's `info.title`, as the Python server names itself.
pub const TITLE: &str = "OpenHands Agent Server";

/// Builds the document for every route and schema of `table`.
pub fn document(table: &RouteTable) -> Value {
    let mut paths = Map::new();
    for route in table.routes() {
        let entry = paths
            .entry(openapi_path(route.path))
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.as_str().to_ascii_lowercase(), operation(route));
        }
    }
    let mut schemas: Map<String, Value> = table
        .schemas()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    schemas.insert("HTTPValidationError".into(), http_validation_error());
    schemas.insert("ValidationError".into(), validation_error());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "description": "OpenHands Agent Server - REST/WebSocket interface for OpenHands AI Agent",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Session-API-Key"},
                "HTTPBearer": {"type": "http", "scheme": "bearer"},
            },
        },
    })
}

/// The OpenAPI form of a matchit pattern: `{*path}` becomes `{path}`.
pub fn openapi_path(pattern: &str) -> String {
    pattern.replace("{*", "{")
}

/// The parameter names of a pattern, in order.
pub fn path_params(pattern: &str) -> Vec<&str> {
    pattern
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| name.trim_start_matches('*'))
        .collect()
}

fn operation(route: &Route) -> Value {
    let doc = &route.doc;
    let mut op = Map::new();
    if !doc.tag.is_empty() {
        op.insert("tags".into(), json!([doc.tag]));
    }
    let summary = if doc.summary.is_empty() {
        format!("{} {}", route.method, route.path)
    } else {
        doc.summary.to_string()
    };
    op.insert("summary".into(), json!(summary));
    if let Some(description) = doc.description {
        op.insert("description".into(), json!(description));
    }
    op.insert("operationId".into(), json!(operation_id(&summary, route)));
    if route.access == Access::ApiKey {
        op.insert(
            "security".into(),
            json!([{"APIKeyHeader": []}, {"HTTPBearer": []}]),
        );
    }

    let mut params: Vec<Value> = path_params(route.path)
        .into_iter()
        .map(|name| {
            let schema = doc
                .params
                .iter()
                .find(|p| p.location == "path" && p.name == name)
                .map_or_else(|| json!({"type": "string"}), |p| p.schema.clone());
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    params.extend(doc.params.iter().filter(|p| p.location != "path").map(
        |p| json!({"name": p.name, "in": p.location, "required": p.required, "schema": p.schema}),
    ));
    let validates = !params.is_empty() || doc.body.is_some();
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some((schema, required)) = &doc.body {
        op.insert(
            "requestBody".into(),
            json!({"required": required, "content": {"application/json": {"schema": schema}}}),
        );
    }

    let mut responses = Map::new();
    if doc.responses.is_empty() {
        responses.insert(
            "200".into(),
            json!({"description": "Successful Response", "content": {"application/json": {"schema": {}}}}),
        );
    }
    for r in &doc.responses {
        let mut body = json!({ "description": r.description });
        if let Some(schema) = &r.schema {
            body["content"] = json!({"application/json": {"schema": schema}});
        }
        responses.insert(r.status.to_string(), body);
    }
    if validates && !responses.contains_key("422") {
        responses.insert(
            "422".into(),
            json!({
                "description": "Validation Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
            }),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// FastAPI's operation id: function name + path, non-word characters as `_`, + method.
fn operation_id(summary: &str, route: &Route) -> String {
    let raw = format!(
        "{}{}",
        summary.to_ascii_lowercase(),
        openapi_path(route.path)
    );
    let word: String = raw
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{word}_{}", route.method.as_str().to_ascii_lowercase())
}

fn http_validation_error() -> Value {
    json!({
        "properties": {"detail": {"items": {"$ref": "#/components/schemas/ValidationError"}, "type": "array", "title": "Detail"}},
        "type": "object",
        "title": "HTTPValidationError",
    })
}

fn validation_error() -> Value {
    json!({
        "properties": {
            "loc": {"items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "type": "array", "title": "Location"},
            "msg": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Error Type"},
            "input": {"title": "Input"},
            "ctx": {"type": "object", "title": "Context"},
        },
        "type": "object",
        "required": ["loc", "msg", "type"],
        "title": "ValidationError",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::router::{schema_ref, Lookup, Router};
    use hyper::Method;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    /// A concrete path for a documented one: each parameter becomes a UUID-ish segment.
    fn concrete(path: &str) -> String {
        path.split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "0b9f0a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The served table and the document agree both ways: each route is
    /// documented under its method, and each documented operation resolves
    /// to the route with that very pattern.
    #[test]
    fn document_and_router_agree() {
        let table = crate::http::routes::table();
        let doc = document(&table);
        let paths = doc["paths"].as_object().unwrap();
        for route in table.routes() {
            let method = route.method.as_str().to_ascii_lowercase();
            let op = &paths[&openapi_path(route.path)][&method];
            assert!(
                op.is_object(),
                "{} {} is not documented",
                route.method,
                route.path
            );
            let documented: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(documented, path_params(route.path), "{}", route.path);
        }
        let routes = table.routes().len();
        let router = Router::new(table.routes().to_vec()).unwrap();
        let mut operations = 0;
        for (path, methods) in paths {
            for method in methods.as_object().unwrap().keys() {
                operations += 1;
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                match router.lookup(&method, &concrete(path)) {
                    Lookup::Found(route, _) => assert_eq!(&openapi_path(route.path), path),
                    other => panic!("{method} {path} is documented but routes to {other:?}"),
                }
            }
        }
        assert_eq!(operations, routes);
        let mut all = Vec::new();
        refs(&doc, &mut all);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas.contains_key(name), "dangling $ref {r}");
        }
    }

    #[test]
    fn operations_look_like_fastapi() {
        let mut table = RouteTable::default();
        table.schema("Thing", json!({"type": "object"}));
        table.add(
            crate::http::router::Route::get("/api/things/{thing_id}/files/{*path}", |_| async {
                Err(crate::http::ApiError::not_found())
            })
            .summary("Get Thing")
            .tag("Things")
            .query_param("limit", false, json!({"type": "integer"}))
            .response(200, "Successful Response", Some(schema_ref("Thing"))),
        );
        let doc = document(&table);
        let op = &doc["paths"]["/api/things/{thing_id}/files/{path}"]["get"];
        assert_eq!(
            op["operationId"],
            "get_thing_api_things__thing_id__files__path__get"
        );
        assert_eq!(op["security"][0], json!({"APIKeyHeader": []}));
        assert_eq!(op["parameters"].as_array().unwrap().len(), 3);
        assert!(op["responses"]["422"].is_object());
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"],
            schema_ref("Thing")
        );
    }
}
