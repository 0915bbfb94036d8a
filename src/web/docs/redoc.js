// /redoc: Redoc (the redoc package's browser build with its peers React,
// styled-components and MobX, bundled by esbuild) reading the server's own
// OpenAPI document. Offline: no CDN, no web font (the system fonts).
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { RedocStandalone } from 'redoc';
import './docs.css';

const options = {
  // The search index runs in a Worker made from a blob: URL; the page's CSP
  // allows no blob: worker, and the browser's find (Ctrl+F) does the job.
  disableSearch: true,
  hideDownloadButton: false,
  expandResponses: '200,201',
  theme: {
    typography: {
      fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif',
      headings: { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif' },
      code: { fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace' },
    },
  },
};

createRoot(document.getElementById('redoc')).render(
  createElement(RedocStandalone, { specUrl: '/api/v1/openapi.json', options }),
);
