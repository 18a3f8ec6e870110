// Starts Swagger UI on the server's own OpenAPI document (no remote resources; "Authorize" takes an API token).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
  });
});
