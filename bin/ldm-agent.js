#!/usr/bin/env node
// Runs dist/ldm-agent.js, the bundle `npm install` builds (see bin/bundle.js).
import { runBundle } from './bundle.js';

await runBundle('ldm-agent');
