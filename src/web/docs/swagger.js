// /docs: Swagger UI (swagger-ui-dist, bundled by esbuild) reading the
// server's own OpenAPI document. Offline: no CDN, no web font. "Try it out"
// calls the API from this origin with the browser's session cookie; the
// request interceptor adds the CSRF header the API asks of cookie sessions.
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';
import { csrfToken } from '../app/api.js';
import './docs.css';

SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
  validatorUrl: null,
  requestInterceptor(req) {
    const token = csrfToken();
    if (token && !/^(GET|HEAD|OPTIONS)$/i.test(req.method || 'GET')) req.headers['X-CSRF-Token'] = token;
    return req;
  },
});
