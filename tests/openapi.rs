//! `GET /openapi.json`: an OpenAPI 3.1 document that describes every route the service
//! answers, with the roles as a bearer scheme. A route added without its description fails
//! here.

mod common;

use common::*;
use redial::http::auth::Access;

#[tokio::test]
async fn the_document_describes_every_route_and_no_other() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["token"],
        serde_json::json!({"type": "http", "scheme": "bearer"})
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut described = 0;
    for endpoint in redial::http::endpoints() {
        let item = paths
            .get(endpoint.path)
            .unwrap_or_else(|| panic!("{} is not in the document", endpoint.path));
        for method in endpoint.methods {
            let operation = &item[method.to_lowercase()];
            assert!(
                operation.is_object(),
                "{method} {} is not in the document",
                endpoint.path
            );
            described += 1;
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {}", endpoint.path);
            // A route behind a token says which roles, and documents the refusals.
            let security = &operation["security"];
            match endpoint.route.access {
                Access::Open => assert_eq!(security, &serde_json::json!([{}])),
                Access::Roles(roles) => {
                    let listed = security[0]["token"].as_array().unwrap();
                    for role in roles {
                        assert!(
                            listed.contains(&serde_json::json!(role.name())),
                            "{method} {}: {role:?} not in {security}",
                            endpoint.path
                        );
                    }
                    for status in ["400", "401", "403", "503"] {
                        assert!(
                            responses.contains_key(status),
                            "{method} {} {status}",
                            endpoint.path
                        );
                    }
                }
            }
        }
    }
    let operations: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        operations, described,
        "the document describes a route that does not exist"
    );
    app.stop().await;
}
