// The live page: state from /api/domains and /api/migrations, re-read when the
// event stream (/api/events) says something changed. No framework, no build
// step; text is set with textContent only, so no name from the agent can
// become markup.
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function bytes(n) {
  if (n == null) return '';
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)}${units[i]}`;
}

function duration(seconds) {
  if (seconds == null || !isFinite(seconds)) return '';
  seconds = Math.round(seconds);
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24, m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

function setBar(bar, used, total) {
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  bar.style.width = `${pct}%`;
}

function renderMachine(m) {
  $('#host').textContent = m.hostname ?? '';
  setBar($('#strands-bar'), m.strands.used, m.strands.total);
  $('#strands-text').textContent = `${m.strands.used} used, ${m.strands.free} free of ${m.strands.total}`;
  setBar($('#memory-bar'), m.memory.used, m.memory.total);
  $('#memory-text').textContent = `${bytes(m.memory.used)} used, ${bytes(m.memory.free)} free of ${bytes(m.memory.total)}`;
}

function workload(w) {
  if (!w) return '';
  return w.filledBytes ? `${w.phase} (${bytes(w.filledBytes)})` : w.phase;
}

function renderDomains(domains) {
  const body = $('#domains tbody');
  body.replaceChildren(
    ...domains.map((d) =>
      el('tr', { 'data-domain': d.name },
        el('td', {}, d.name), el('td', { class: 'state' }, d.state), el('td', { class: 'flags' }, d.flags),
        el('td', {}, d.vcpus ?? ''), el('td', {}, bytes(d.memory)), el('td', {}, workload(d.workload)), el('td', {}, duration(d.uptime)))),
  );
}

function renderMigrations(list) {
  $('#no-migrations').hidden = list.length > 0;
  // Running first, then the newest finished ones.
  const sorted = [...list].sort((a, b) => Number(a.finished) - Number(b.finished) || b.startTime.localeCompare(a.startTime));
  $('#migrations').replaceChildren(
    ...sorted.map((m) => {
      const bar = el('div', { class: `fill ${m.status === 'completed' ? 'done' : m.finished || m.status === 'error' ? 'failed' : ''}` });
      bar.style.width = `${m.progress}%`;
      const rate = m.mbps ? m.mbps * 125000 : 0; // bytes per second
      const eta = !m.finished && rate > 0 ? duration(m.remaining / rate) : '';
      const facts = [
        ['phase', m.phase], ['status', m.status], ['rate', m.mbps ? `${m.mbps} Mbit/s` : ''], ['ETA', eta],
        ['pass', m.iterations], ['transferred', bytes(m.transferred)],
        ['expected downtime', `${m.expectedDowntime} ms`], ['downtime', m.finished || m.downtime ? `${m.downtime} ms` : ''],
      ];
      if (m.error) facts.push(['error', m.error]);
      return el('div', { class: 'migration', 'data-domain': m.domain, 'data-status': m.status },
        el('div', { class: 'title' }, el('strong', {}, `${m.domain} ${m.role === 'source' ? '→' : '←'} ${m.peer}`), el('span', { class: 'percent' }, `${m.progress}%`)),
        el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(m.progress) }, bar),
        el('dl', {}, ...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v ?? '')])));
    }),
  );
}

async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

let running = false;
async function refresh() {
  const [d, m] = await Promise.all([getJson('/api/domains'), getJson('/api/migrations')]);
  renderMachine(d.machine);
  renderDomains(d.domains);
  renderMigrations(m.migrations);
  running = m.migrations.some((x) => !x.finished);
  document.body.dataset.loaded = 'true';
}

// Events come in bursts (a migration reports often): one re-read per burst.
let timer = null;
function refreshSoon() {
  if (timer) return;
  timer = setTimeout(() => { timer = null; refresh().catch(() => {}); }, 150);
}

function listen() {
  const live = $('#live');
  // EventSource reconnects by itself and sends Last-Event-ID.
  const source = new EventSource('/api/events');
  source.onopen = () => { live.textContent = 'live'; live.classList.remove('off'); refreshSoon(); };
  source.onerror = () => { live.textContent = 'offline'; live.classList.add('off'); };
  source.addEventListener('ldm', refreshSoon);
}

// Rate and ETA change between events while a migration runs: a slow poll keeps them fresh.
setInterval(() => { if (running) refreshSoon(); }, 2000);
refresh().catch(() => {});
listen();
