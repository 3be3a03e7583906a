//! `/openapi.json`, `/docs` (Swagger UI) and `/redoc`, as FastAPI serves them.

use hyper::StatusCode;

use crate::http::openapi::TITLE;
use crate::http::{response, HandlerResult, Request, Route, RouteTable};

const TAG: &str = "Docs";

/// Adds the routes.
pub fn register(table: &mut RouteTable) {
    table
        .add(
            Route::get("/openapi.json", openapi)
                .summary("OpenAPI Document")
                .description("This document: every route the server serves, as OpenAPI 3.1.")
                .tag(TAG)
                .response(
                    200,
                    "Successful Response",
                    Some(serde_json::json!({"type": "object"})),
                ),
        )
        .add(
            Route::get("/docs", swagger_ui)
                .summary("Swagger UI")
                .tag(TAG)
                .response(200, "An HTML page", None),
        )
        .add(
            Route::get("/redoc", redoc)
                .summary("ReDoc")
                .tag(TAG)
                .response(200, "An HTML page", None),
        );
}

async fn openapi(req: Request) -> HandlerResult {
    Ok(response::json_bytes(
        StatusCode::OK,
        req.app().openapi_json(),
    ))
}

async fn swagger_ui(_req: Request) -> HandlerResult {
    Ok(response::html(format!(
        r##"
    <!DOCTYPE html>
    <html>
    <head>
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <link type="text/css" rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
    <link rel="shortcut icon" href="https://fastapi.tiangolo.com/img/favicon.png">
    <title>{TITLE} - Swagger UI</title>
    </head>
    <body>
    <div id="swagger-ui">
    </div>
    <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
    <!-- `SwaggerUIBundle` is now available on the page -->
    <script>
    const ui = SwaggerUIBundle({{
        url: '/openapi.json',
    "dom_id": "#swagger-ui",
"layout": "BaseLayout",
"deepLinking": true,
"showExtensions": true,
"showCommonExtensions": true,
    presets: [
        SwaggerUIBundle.presets.apis,
        SwaggerUIBundle.SwaggerUIStandalonePreset
        ],
    }})
    </script>
    </body>
    </html>
    "##
    )))
}

async fn redoc(_req: Request) -> HandlerResult {
    Ok(response::html(format!(
        r##"
    <!DOCTYPE html>
    <html>
    <head>
    <title>{TITLE} - ReDoc</title>
    <!-- needed for adaptive design -->
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <link href="https://fonts.googleapis.com/css?family=Montserrat:300,400,700|Roboto:300,400,700" rel="stylesheet">
    <link rel="shortcut icon" href="https://fastapi.tiangolo.com/img/favicon.png">
    <!--
    ReDoc doesn't change outer page styles
    -->
    <style>
      body {{
        margin: 0;
        padding: 0;
      }}
    </style>
    </head>
    <body>
    <noscript>
        ReDoc requires Javascript to function. Please enable it to browse the documentation.
    </noscript>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"> </script>
    </body>
    </html>
    "##
    )))
}
