// Swagger UI on the API's own description (no inline script: the CSP forbids it).
window.addEventListener("load", function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({url: node.dataset.spec, dom_id: "#swagger-ui",
                               deepLinking: true});
});
