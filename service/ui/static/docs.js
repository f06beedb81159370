// Starts Swagger UI on /docs (a file, not an inline script, so the page's policy can forbid inline code).
"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
