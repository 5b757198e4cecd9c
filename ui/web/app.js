// The Sunbox dashboard: log in, then the box at a glance, kept live by server-sent events.
import { applyStrings, loadStrings, t } from './i18n.js';
import { api, setCsrf, svg } from './api.js';
import * as fmt from './format.js';
import { PowerFlow } from './flow.js';

const $ = (sel) => document.querySelector(sel);
const RANK = { viewer: 0, operator: 1, technician: 2, admin: 3 };
const state = { info: null, me: null, flow: null, stream: null, last: null, timers: [], events: new Set() };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function show(view) {
  for (const id of ['#loading', '#view-login', '#view-setup', '#view-app']) $(id).hidden = id !== view;
  const inApp = view === '#view-app';
  $('#logout').hidden = !inApp;
  $('#who').hidden = !inApp;
  $('#live').hidden = !inApp;
}

function result(node, ok, text) {
  node.dataset.ok = ok ? 'true' : 'false';
  node.textContent = text;
}

function banner(text) {
  $('#banner').hidden = !text;
  $('#banner').textContent = text || '';
}

// ------------------------------------------------------------------ start
async function boot() {
  state.info = await api('/api/info');
  await loadStrings(state.info.language);
  applyStrings();
  fmt.setZone(state.info.tz, state.info.language);
  $('#site-name').textContent = state.info.site;
  document.title = `${state.info.site} · ${t('app.title')}`;
  $('#login-form').addEventListener('submit', onLogin);
  $('#setup-form').addEventListener('submit', onSetup);
  $('#logout').addEventListener('click', onLogout);
  $('#job-form').addEventListener('submit', onSubmitJob);
  $('#job-form').kind.addEventListener('change', kindFields);
  $('#setpoint-form').addEventListener('submit', onSetpoint);
  $('#safe-on').addEventListener('click', () => safeMode(true));
  $('#safe-off').addEventListener('click', () => safeMode(false));
  $('#user-form').addEventListener('submit', onAddUser);
  window.addEventListener('sunbox:logged-out', () => { if (state.me) loggedOut(); });
  kindFields();
  if (state.info.setup_needed) { show('#view-setup'); return; }
  state.me = state.info.user;
  if (state.me) enterApp(); else show('#view-login');
}

function loggedOut() {
  state.me = null;
  if (state.stream) state.stream.close();
  state.stream = null;
  for (const id of state.timers) clearInterval(id);
  state.timers = [];
  show('#view-login');
}

async function onLogin(ev) {
  ev.preventDefault();
  const f = ev.target;
  try {
    state.me = await api('/api/login', { method: 'POST', body: { name: f.name.value, password: f.password.value } });
    f.password.value = '';
    $('#login-result').textContent = '';
    enterApp();
  } catch (err) {
    result($('#login-result'), false, t('login.failed', { reason: err.message }));
  }
}

async function onSetup(ev) {
  ev.preventDefault();
  const f = ev.target;
  if (f.password.value !== f.repeat.value) { result($('#setup-result'), false, t('setup.mismatch')); return; }
  try {
    state.me = await api('/api/setup', { method: 'POST', body: { name: f.name.value, password: f.password.value } });
    f.password.value = ''; f.repeat.value = '';
    enterApp();
  } catch (err) {
    result($('#setup-result'), false, err.message);
  }
}

async function onLogout() {
  try { await api('/api/logout', { method: 'POST' }); } catch { /* the session may be gone already */ }
  loggedOut();
}

function allows(needed) { return state.me && RANK[state.me.role] >= RANK[needed]; }

function applyRoles() {
  for (const node of document.querySelectorAll('[data-role]')) node.hidden = !allows(node.dataset.role);
  for (const node of document.querySelectorAll('[data-role-not]')) node.hidden = allows(node.dataset.roleNot);
}

function enterApp() {
  setCsrf(state.me.csrf_token);
  $('#who').textContent = t('app.user', { user: state.me.user, role: t(`role.${state.me.role}`) });
  applyRoles();
  show('#view-app');
  if (!state.flow) state.flow = new PowerFlow($('#flow'));
  api('/api/state').then(renderState).catch(() => {});
  loadJobs(); loadEvents(); loadLinks(); loadHeat(); loadPlan(); refreshCharts();
  if (allows('technician')) loadSetpoints();
  if (allows('admin')) loadUsers();
  connect();
  state.timers.push(setInterval(refreshCharts, 60000));
  state.timers.push(setInterval(() => { loadLinks(); loadHeat(); loadPlan(); }, 30000));
}

// ------------------------------------------------------------------ live
function connect() {
  if (state.stream) state.stream.close();
  const es = new EventSource('/api/stream');
  state.stream = es;
  es.addEventListener('open', () => { banner(null); $('#live').textContent = t('app.live'); });
  es.addEventListener('state', (e) => renderState(JSON.parse(e.data)));
  es.addEventListener('event', (e) => onEvent(JSON.parse(e.data)));
  es.addEventListener('error', async () => {
    $('#live').textContent = '';
    banner(t('app.offline'));
    try { await api('/api/me'); } catch (err) { if (err.status === 401) loggedOut(); }
  });
}

function onEvent(ev) {
  addEvent(ev, true);
  if (ev.kind === 'job') loadJobs();
  if (ev.kind === 'plan') { loadPlan(); refreshCharts(['soc', 'plan', 'forecast']); }
}

// ------------------------------------------------------------------ now
function renderState(s) {
  state.last = s;
  const mode = s.mode || 'unknown';
  $('#mode').dataset.mode = mode;
  $('#mode').textContent = t(`mode.${mode}`);
  $('#mode-reason').textContent = s.mode_reason ? t('mode.why', { reason: s.mode_reason }) : '';
  if (s.at) $('#clock').textContent = fmt.clock(new Date(s.at));
  if (state.flow) state.flow.update(s);
  const bat = s.battery || {};
  const soc = bat.soc_pct;
  $('#soc-value').textContent = fmt.pct(soc);
  // the same rounding as the text (toFixed rounds the binary value: 72.44999… gives 72.4 where
  // the text shows 72.5), so the attribute changes only when what is shown changes
  $('#soc-value').dataset.soc = soc === null || soc === undefined ? '' : (Math.round(soc * 10) / 10).toFixed(1);
  $('#soc-value').classList.toggle('stale', (s.stale || []).includes('soc_pct'));
  $('#soc-bar').setAttribute('aria-valuenow', soc ?? 0);
  $('#soc-fill').style.width = `${Math.max(0, Math.min(100, soc || 0))}%`;
  $('#soc-fill').dataset.low = soc !== null && soc !== undefined && soc < bat.reserve_pct ? 'true' : 'false';
  $('#soc-reserve').style.left = `${bat.reserve_pct}%`;
  $('#soc-reserve-label').textContent = t('soc.reserve', { pct: bat.reserve_pct });
  const above = bat.above_reserve_wh;
  $('#soc-note').textContent = above === null || above === undefined ? ''
    : above >= 0 ? t('soc.above_reserve', { energy: fmt.energy(above) }) : t('soc.below_reserve', { energy: fmt.energy(-above) });
  renderHeatTiles(s.heat || {});
  renderAlarms(s.alarms || []);
}

// ------------------------------------------------------------------ charts
async function refreshCharts(names) {
  const list = Array.isArray(names) ? names : ['forecast', 'soc', 'plan', 'heat'];
  await Promise.all(list.map(async (name) => {
    const box = document.querySelector(`[data-chart="${name}"]`);
    try {
      box.innerHTML = await svg(`/api/charts/${name}.svg`);
      box.dataset.loaded = 'true';
    } catch { /* keep the last picture */ }
  }));
}

// ------------------------------------------------------------------ plan
async function loadPlan() {
  let plan;
  try { plan = await api('/api/plan'); } catch { return; }
  $('#plan-made').textContent = plan.ready ? t('plan.made', { time: fmt.dayTime(plan.created_at), reason: plan.reason }) : '';
  const rows = (plan.windows || []).map((w) => el('li', {},
    el('div', { class: 'title' }, w.name),
    el('div', { class: 'meta' }, `${fmt.dayTime(w.start)} – ${fmt.time(w.end)} · ${fmt.energy(w.energy_wh)}`)));
  $('#plan-windows').replaceChildren(...(rows.length ? rows : [el('li', {}, t('plan.none'))]));
}

// ------------------------------------------------------------------ jobs
function kindFields() {
  const kind = $('#job-form').kind.value;
  for (const node of document.querySelectorAll('[data-for-kind]')) node.hidden = !node.dataset.forKind.split(' ').includes(kind);
}

async function loadJobs() {
  let jobs;
  try { jobs = await api('/api/jobs?limit=50'); } catch { return; }
  const rows = jobs.map((j) => {
    const why = j.waiting || j.reason;
    const unpromised = j.best_effort && !j.finished;  // runs without a promise until a plan keeps it
    const li = el('li', { dataset: { job: j.id, state: j.state, bestEffort: String(Boolean(j.best_effort)) } },
      el('div', { class: 'title' }, j.name, el('span', { class: 'badge', dataset: { state: j.state } }, t(`jobs.state.${j.state}`)),
        unpromised ? el('span', { class: 'badge', dataset: { bestEffort: 'true' }, title: t('jobs.best_effort_why') }, t('jobs.best_effort')) : null),
      why ? el('div', { class: 'why' }, why) : null,
      el('div', { class: 'meta' }, [
        j.energy_wh ? t('jobs.energy_of', { used: Math.round(j.energy_used_wh), asked: Math.round(j.energy_wh) }) : fmt.power(j.power_w),
        j.deadline ? t('jobs.deadline_at', { time: fmt.dayTime(j.deadline) }) : null,
      ].filter(Boolean).join(' · ')));
    if (j.progress_pct !== null && !j.finished) {
      const bar = el('div', { class: 'progress' }, el('div'));
      bar.firstChild.style.width = `${j.progress_pct}%`;
      li.append(bar);
    }
    if (!j.finished && allows('operator')) {
      li.append(el('button', { type: 'button', class: 'small', onclick: () => cancelJob(j) }, t('jobs.cancel')));
    }
    return li;
  });
  $('#job-list').replaceChildren(...(rows.length ? rows : [el('li', {}, t('jobs.none'))]));
}

async function onSubmitJob(ev) {
  ev.preventDefault();
  const f = ev.target;
  const kind = f.kind.value;
  const body = { name: f.name.value.trim(), kind };
  if (kind !== 'critical' && f.energy_wh.value) body.energy_wh = Number(f.energy_wh.value);
  if (f.power_w.value) body.power_w = Number(f.power_w.value);
  if (kind === 'deferrable') {
    const boxNow = state.last && state.last.at ? Date.parse(state.last.at) : Date.now();
    body.deadline = new Date(boxNow + Number(f.deadline_h.value) * 3600e3).toISOString();
  }
  if (f.cmd && f.cmd.value.trim() && allows('technician')) body.cmd = f.cmd.value.trim();
  const out = $('#job-result');
  out.textContent = '…';
  try {
    const answer = await api('/api/jobs', { method: 'POST', body });
    // the box's own words, as `sunbox jobs submit` prints them ("admitted: …" / "rejected: …")
    result(out, answer.admitted, answer.reason);
    out.dataset.decision = answer.admitted ? 'admitted' : 'rejected';
  } catch (err) {
    result(out, false, err.message);
    out.dataset.decision = 'error';
  }
  loadJobs();
}

async function cancelJob(job) {
  if (!window.confirm(t('jobs.cancel_confirm', { name: job.name }))) return;
  try { await api(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, { method: 'POST', body: {} }); } catch (err) { banner(t('error.generic', { reason: err.message })); }
  loadJobs();
}

// ------------------------------------------------------------------ heat
function tile(label, value, extra) {
  return el('div', { class: 'tile' }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value),
    extra ? el('div', { class: 'note' }, extra) : null);
}

function renderHeatTiles(h) {
  if (!h.enabled) { $('#heat-tiles').replaceChildren(el('p', {}, t('heat.disabled'))); return; }
  $('#heat-tiles').replaceChildren(
    tile(t('heat.room'), fmt.celsius(h.room_temp_c), t('heat.setpoint', { c: h.setpoint_c })),
    tile(t('heat.outdoor'), fmt.celsius(h.outdoor_temp_c)),
    tile(t('heat.damper'), fmt.pct(h.damper_pct), t(h.wanted ? 'heat.wanted' : 'heat.not_wanted')),
  );
}

async function loadHeat() {
  let h;
  try { h = await api('/api/heat'); } catch { return; }
  const l = h.ledger || {};
  const facts = [
    ['heat.delivered', fmt.energy(l.heat_delivered_wh)], ['heat.used', fmt.energy(l.heat_used_wh)],
    ['heat.vented', fmt.energy(l.heat_vented_wh)], ['heat.erf', l.erf === undefined ? '–' : `${Math.round(l.erf * 100)} %`],
    ['heat.deficit', l.comfort_deficit_kh === undefined ? '–' : l.comfort_deficit_kh.toFixed(2)],
  ];
  $('#heat-ledger').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, t(k)), el('dd', {}, v)]));
}

// ------------------------------------------------------------------ links
async function loadLinks() {
  let s;
  try { s = await api('/api/links'); } catch { return; }
  const rows = (s.links || []).map((lk) => el('li', { dataset: { link: lk.name } },
    el('div', { class: 'title' }, `${lk.name} (${lk.kind})`,
      el('span', { class: 'badge' }, !lk.enabled ? t('links.disabled') : lk.window_open ? t('links.window_open') : t('links.window_closed'))),
    lk.decision ? el('div', { class: 'why' }, lk.decision) : null,
    el('div', { class: 'meta' }, [
      lk.bytes_used_today !== undefined ? t('links.used', { used: fmt.bytes(lk.bytes_used_today), budget: fmt.bytes(lk.budget_bytes) }) : null,
      t('links.last_success', { time: lk.last_success ? fmt.dayTime(lk.last_success) : t('links.never') }),
      lk.last_error || null,
    ].filter(Boolean).join(' · '))));
  $('#link-list').replaceChildren(...(rows.length ? rows : [el('li', {}, t('links.none'))]));
  const q = s.queue || {};
  $('#queue').replaceChildren(...Object.entries(q).flatMap(([k, v]) => [el('dt', {}, t(`links.priority.${k}`)), el('dd', { dataset: { priority: k } }, String(v))]));
  $('#queue-oldest').textContent = s.oldest_undelivered ? t('links.oldest', { time: fmt.dayTime(s.oldest_undelivered) }) : '';
}

// ------------------------------------------------------------------ events
function eventRow(ev) {
  return el('li', { dataset: { sev: ev.severity, kind: ev.kind, id: ev.id } },
    el('div', { class: 'title' }, el('time', { datetime: ev.at }, fmt.dayTime(ev.at)),
      el('span', { class: 'badge', dataset: { sev: ev.severity } }, t(`events.severity.${ev.severity}`)),
      el('span', { class: 'meta' }, ev.kind)),
    el('div', {}, ev.message));
}

function addEvent(ev, atTop) {
  if (state.events.has(ev.id)) return;
  state.events.add(ev.id);
  const list = $('#event-list');
  if (list.dataset.empty === 'true') { list.replaceChildren(); list.dataset.empty = 'false'; }
  if (atTop) list.prepend(eventRow(ev)); else list.append(eventRow(ev));
  while (list.children.length > 100) list.lastChild.remove();
}

async function loadEvents() {
  let events;
  try { events = await api('/api/events?limit=50'); } catch { return; }
  state.events.clear();
  $('#event-list').replaceChildren();
  for (const ev of events) addEvent(ev, false);
  if (!events.length) { $('#event-list').replaceChildren(el('li', {}, t('events.none'))); $('#event-list').dataset.empty = 'true'; }
}

function renderAlarms(alarms) {
  const rows = alarms.map((a) => el('li', { dataset: { sev: a.severity } },
    el('div', { class: 'title' }, el('span', { class: 'badge', dataset: { sev: a.severity } }, t(`events.severity.${a.severity}`)), a.source),
    el('div', {}, a.message)));
  $('#alarm-list').replaceChildren(...(rows.length ? rows : [el('li', {}, t('events.no_alarms'))]));
}

// ------------------------------------------------------------------ technician
async function safeMode(on) {
  try { await api('/api/safe-mode', { method: 'POST', body: { on } }); } catch (err) { banner(t('error.generic', { reason: err.message })); }
}

async function loadSetpoints() {
  let points;
  try { points = await api('/api/setpoints'); } catch { return; }
  $('#setpoint-point').replaceChildren(...points.map((p) => el('option', { value: `${p.device}|${p.point}` }, `${p.device} · ${p.point} (${p.min}–${p.max})`)));
}

async function onSetpoint(ev) {
  ev.preventDefault();
  const f = ev.target;
  const [device, point] = f.point.value.split('|');
  const out = $('#setpoint-result');
  try {
    const r = await api('/api/setpoints', { method: 'POST', body: { device, point, value: Number(f.value.value), reason: f.reason.value } });
    result(out, true, t('tech.written', { value: r.read_back }));
  } catch (err) {
    result(out, false, t('tech.refused', { reason: (err.body && err.body.reason) || err.message }));
  }
}

// ------------------------------------------------------------------ admin
async function loadUsers() {
  let users;
  try { users = await api('/api/users'); } catch { return; }
  $('#user-list').replaceChildren(...users.map((u) => {
    const role = el('select', { 'aria-label': t('admin.role') }, ...Object.keys(RANK).map((r) => el('option', { value: r }, t(`role.${r}`))));
    role.value = u.role;
    role.addEventListener('change', async () => {
      try { await api(`/api/users/${encodeURIComponent(u.name)}/role`, { method: 'POST', body: { role: role.value } }); } catch (err) { banner(err.message); }
      loadUsers();
    });
    const reset = el('button', { type: 'button', class: 'small', onclick: async () => {
      const pw = window.prompt(t('admin.reset'));
      if (!pw) return;
      try { await api(`/api/users/${encodeURIComponent(u.name)}/password`, { method: 'POST', body: { password: pw } }); } catch (err) { banner(err.message); }
    } }, t('admin.reset'));
    const remove = el('button', { type: 'button', class: 'small', onclick: async () => {
      if (!window.confirm(t('admin.remove_confirm', { name: u.name }))) return;
      try { await api(`/api/users/${encodeURIComponent(u.name)}`, { method: 'DELETE' }); } catch (err) { banner(err.message); }
      loadUsers();
    } }, t('admin.remove'));
    return el('li', { dataset: { user: u.name } }, el('div', { class: 'title' }, u.name), el('div', { class: 'buttons' }, role, reset, remove));
  }));
}

async function onAddUser(ev) {
  ev.preventDefault();
  const f = ev.target;
  try {
    await api('/api/users', { method: 'POST', body: { name: f.name.value, role: f.role.value, password: f.password.value } });
    result($('#user-result'), true, t('admin.added', { name: f.name.value }));
    f.reset();
    loadUsers();
  } catch (err) {
    result($('#user-result'), false, err.message);
  }
}

boot().catch((err) => banner(t('error.generic', { reason: err.message })));
