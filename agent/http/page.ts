/**
 * `GET /` and its static files: the live page (agent/http/page/: index.html,
 * app.js, style.css). No build step and no external resources, so the page
 * works on an isolated management network and under a CSP of 'self' only.
 */
import express, { Router } from 'express';
import { fileURLToPath } from 'node:url';

/**
 * The page's folder, beside this source. The bundles in dist/ keep each source's
 * own import.meta.url (scripts/build.mjs), so this holds for them too.
 */
export const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));

/** Routes of the live page: `/` and `/page/*`. */
export function pageRoutes(): Router {
  const router = Router();
  // no-cache: the browser revalidates (ETag), so an upgraded agent's page is never stale.
  const files = express.static(PAGE_DIR, { index: false, dotfiles: 'ignore', cacheControl: true, maxAge: 0, redirect: false });
  router.get('/', (_req, res) => {
    res.set('Cache-Control', 'no-cache').sendFile('index.html', { root: PAGE_DIR });
  });
  router.use('/page', (req, res, next) => {
    res.set('Cache-Control', 'no-cache');
    files(req, res, next);
  });
  return router;
}
