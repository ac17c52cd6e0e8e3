// quiver explorer: every query URL is also a page. This script reads the address, asks the
// same URL for JSON (with the token kept in this browser, or the share link's signature),
// and renders a form, a table and a chart, or browsable metadata. No external resources.
'use strict';
(() => {
  const ROOT = document.body.dataset.apiRoot || '/v1';
  const main = document.getElementById('main');
  const TOKEN_KEY = 'quiver.token';
  const PARAMS = ['metrics', 'dateTime', 'timeZone', 'filters', 'having', 'sort', 'topN', 'count', 'perPage', 'page',
    'asyncAfter', 'shareUser', 'shareExpires', 'shareSignature'];
  const COLORS = ['#2457c5', '#d9480f', '#2b8a3e', '#862e9c', '#c2255c', '#0b7285', '#e67700', '#5c940d', '#364fc7',
    '#a61e4d', '#495057', '#087f5b'];
  let inflight = null;

  // ---------------------------------------------------------------- small helpers

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }
  const svg = (tag, attrs) => {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };
  const token = () => localStorage.getItem(TOKEN_KEY);
  const shared = () => new URLSearchParams(location.search).has('shareSignature');
  const fmt = (v) => typeof v === 'number' ? v.toLocaleString(undefined, { maximumFractionDigits: 3 }) : (v ?? '');

  async function api(url, signal) {
    const headers = { Accept: 'application/json' };
    if (token() && !shared()) headers.Authorization = 'Bearer ' + token();
    const r = await fetch(url, { headers, signal });
    const text = await r.text();
    let body;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = { description: text }; }
    return { status: r.status, body };
  }

  function withParam(url, name, value) {
    const u = new URL(url, location.origin);
    if (value === null) u.searchParams.delete(name); else u.searchParams.set(name, value);
    return u.pathname + u.search;
  }

  // Splits `a,b[c,d],e` at top-level commas.
  function splitTop(s) {
    const out = []; let depth = 0, cur = '';
    for (const ch of s || '') {
      if (ch === '[') depth++;
      if (ch === ']') depth--;
      if (ch === ',' && depth === 0) { out.push(cur); cur = ''; } else cur += ch;
    }
    if (cur) out.push(cur);
    return out;
  }

  function showWho() {
    const who = document.getElementById('who');
    who.replaceChildren();
    if (shared()) who.append('shared link (read-only)');
    else if (token()) who.append('token set ', el('button', { type: 'button', text: 'sign out', onclick: () => { localStorage.removeItem(TOKEN_KEY); location.reload(); } }));
  }

  function askToken(message) {
    main.replaceChildren(el('form', { class: 'token', id: 'token-form', onsubmit: (e) => {
      e.preventDefault();
      const t = document.getElementById('token').value.trim();
      if (t) { localStorage.setItem(TOKEN_KEY, t); showWho(); route(); }
    } },
    el('h1', { text: 'Sign in' }),
    el('p', { class: 'muted', text: message || 'This gateway needs a token. It stays in this browser and is sent as a bearer header.' }),
    el('label', { for: 'token', text: 'Token' }),
    el('input', { type: 'password', id: 'token', autocomplete: 'off', required: true }),
    el('button', { type: 'submit', class: 'primary', text: 'Continue' })));
    document.getElementById('token').focus();
  }

  function notice(kind, ...kids) { return el('div', { class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status' }, ...kids); }

  // ---------------------------------------------------------------- landing page

  async function landing() {
    document.title = 'quiver';
    const r = await api(ROOT + '/tables?format=fullview');
    if (r.status === 401) return askToken();
    if (r.status !== 200) return main.replaceChildren(notice('error', r.body?.description || 'Error ' + r.status));
    const tables = r.body.tables || [];
    const cards = await Promise.all(tables.map(async (t) => {
      const grains = t.timeGrains.map((g) => g.name);
      const grain = grains.includes('day') ? 'day' : grains[0];
      const g = t.timeGrains.find((x) => x.name === grain) || t.timeGrains[0];
      const metric = g.metrics[0]?.name || '';
      const detail = await api(`${ROOT}/tables/${encodeURIComponent(t.name)}/${grain}`);
      const avail = detail.body?.availableIntervals || [];
      let dateTime = 'P7D/current';
      if (avail.length) {
        const end = avail[avail.length - 1].split('/')[1].slice(0, 10);
        const start = new Date(Date.parse(end) - 7 * 864e5).toISOString().slice(0, 10);
        dateTime = `${start}/${end}`;
      }
      const href = `${ROOT}/data/${encodeURIComponent(t.name)}/${grain}?metrics=${encodeURIComponent(metric)}&dateTime=${encodeURIComponent(dateTime)}`;
      return el('section', { class: 'card' },
        el('h2', {}, el('a', { href, text: t.longName || t.name })),
        el('p', { class: 'muted', text: t.description || '' }),
        el('dl', { class: 'props' },
          el('dt', { text: 'table' }), el('dd', {}, el('code', { text: t.name })),
          el('dt', { text: 'grains' }), el('dd', { text: grains.join(', ') }),
          el('dt', { text: 'dimensions' }), el('dd', { text: g.dimensions.map((d) => d.name).join(', ') }),
          el('dt', { text: 'metrics' }), el('dd', { text: g.metrics.length + ' (' + g.metrics.slice(0, 4).map((m) => m.name).join(', ') + '…)' }),
          el('dt', { text: 'data' }), el('dd', { text: avail.join(', ') || 'none' })),
        el('p', {}, el('a', { href, text: 'Explore ' + t.name + ' →' }), ' · ',
          el('a', { href: `${ROOT}/tables/${encodeURIComponent(t.name)}/${grain}`, text: 'schema' })));
    }));
    main.replaceChildren(el('h1', { text: 'Tables' }),
      el('p', { class: 'muted' }, 'Every query is a URL: open one, change the form, share the address. ',
        el('a', { href: ROOT + '/openapi.json?format=json', text: 'OpenAPI document' }), '.'),
      el('div', { class: 'cards' }, cards));
  }

  // ---------------------------------------------------------------- metadata pages

  function valueNode(v) {
    if (typeof v === 'string' && /^https?:\/\//.test(v) && v.startsWith(location.origin)) {
      return el('a', { href: v.slice(location.origin.length), text: v.slice(location.origin.length) });
    }
    if (Array.isArray(v)) {
      if (v.length && typeof v[0] === 'object') return rowsTable(v);
      return el('span', { text: v.join(', ') });
    }
    if (v && typeof v === 'object') return props(v);
    return el('span', { text: fmt(v) });
  }
  function props(obj) {
    return el('dl', { class: 'props' }, Object.entries(obj).flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, valueNode(v))]));
  }
  function rowsTable(rows) {
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    return el('div', { class: 'tablewrap' }, el('table', { class: 'grid' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', { scope: 'col', text: c })))),
      el('tbody', {}, rows.map((r) => el('tr', {}, cols.map((c) => {
        const v = r[c];
        return el('td', { class: typeof v === 'number' ? 'num' : null }, typeof v === 'object' && v !== null ? el('span', { text: JSON.stringify(v) }) : valueNode(v));
      }))))));
  }

  async function metaPage() {
    const path = location.pathname;
    document.title = 'quiver · ' + path.slice(ROOT.length + 1);
    const r = await api(path + location.search);
    if (r.status === 401) return askToken();
    const kids = [el('h1', {}, el('code', { text: path.slice(ROOT.length) || '/' }))];
    const m = path.match(new RegExp('^' + ROOT + '/dimensions/([^/]+)/values$'));
    if (m) {
      const dim = decodeURIComponent(m[1]);
      kids.push(el('form', { class: 'actions', role: 'search', onsubmit: (e) => {
        e.preventDefault();
        const term = document.getElementById('search').value.trim();
        location.assign(withParam(location.href, 'filters', term ? `${dim}|desc-contains[${term}]` : null));
      } }, el('label', { for: 'search', text: 'Search values' }),
      el('input', { type: 'text', id: 'search', placeholder: 'part of the description' }),
      el('button', { type: 'submit', text: 'Search' })));
    }
    const t = path.match(new RegExp('^' + ROOT + '/tables/([^/]+)/([^/]+)$'));
    if (t && r.status === 200) {
      const metric = r.body.metrics?.[0]?.name || '';
      const avail = r.body.availableIntervals || [];
      const dt = avail.length ? avail[avail.length - 1] : 'P7D/current';
      kids.push(el('p', {}, el('a', { href: `${ROOT}/data/${t[1]}/${t[2]}?metrics=${encodeURIComponent(metric)}&dateTime=${encodeURIComponent(dt)}`, text: 'Explore this table →' })));
    }
    if (r.status >= 400) kids.push(errorNotice(r.body));
    else if (r.body && Array.isArray(r.body.rows)) kids.push(rowsTable(r.body.rows), pagerFor(r.body.meta));
    else kids.push(props(r.body || {}));
    main.replaceChildren(...kids.filter(Boolean));
  }

  // ---------------------------------------------------------------- the explorer

  function parseDataUrl() {
    const parts = location.pathname.slice(ROOT.length + '/data/'.length).split('/').filter(Boolean).map(decodeURIComponent);
    const [table, grain, ...segs] = parts;
    const dims = segs.map((s) => { const [name, show] = s.split(';show='); return { name, show: show || '' }; });
    return { table, grain, dims, params: new URLSearchParams(location.search) };
  }

  function buildUrl(st) {
    const segs = [st.table, st.grain, ...st.dims.map((d) => encodeURIComponent(d.name) + (d.show ? ';show=' + encodeURIComponent(d.show) : ''))];
    const q = new URLSearchParams();
    for (const p of PARAMS) { const v = st.params.get(p); if (v !== null && v !== '') q.set(p, v); }
    return `${ROOT}/data/${segs.join('/')}?${q.toString().replace(/%7C/g, '|').replace(/%2C/g, ',').replace(/%5B/g, '[').replace(/%5D/g, ']').replace(/%2F/g, '/')}`;
  }

  const ERROR_PARAMS = [['METRIC', 'metrics'], ['HAVING', 'having'], ['SORT', 'sort'], ['TOP_N', 'topN'], ['COUNT', 'count'],
    ['FILTER', 'filters'], ['INTERVAL', 'dateTime'], ['DATE', 'dateTime'], ['TIME_ZONE', 'timeZone'], ['GRAIN', 'grain'],
    ['TABLE', 'table'], ['DIMENSION', 'dimensions'], ['PAGE', 'page'], ['PER_PAGE', 'perPage'], ['FORMAT', 'format']];
  function errorParam(reason) {
    const hit = ERROR_PARAMS.find(([prefix]) => (reason || '').includes(prefix));
    return hit ? hit[1] : null;
  }
  function errorNotice(body) {
    const param = errorParam(body?.reason);
    return notice('error', el('strong', { text: body?.description || 'The request failed.' }),
      param ? el('div', { class: 'muted', text: `Fix the ${param} parameter (${body.reason}).` }) : null);
  }

  async function tableMeta(table, grain) {
    const r = await api(`${ROOT}/tables/${encodeURIComponent(table)}/${encodeURIComponent(grain)}`);
    return r.status === 200 ? r.body : null;
  }

  async function explorer() {
    const st = parseDataUrl();
    document.title = `quiver · ${st.table}/${st.grain}`;
    const [tables, meta] = await Promise.all([api(ROOT + '/tables'), tableMeta(st.table, st.grain)]);
    if (tables.status === 401 && !shared()) return askToken();
    const form = buildForm(st, tables.body?.rows || [], meta);
    const results = el('section', { class: 'results', id: 'results', 'aria-label': 'Results' });
    main.replaceChildren(el('div', { class: 'layout' }, form, results));
    run();
  }

  function option(value, text, selected) { return el('option', { value, text: text ?? value, selected: selected || null }); }

  function buildForm(st, tableRows, meta) {
    const p = st.params;
    const onChange = () => apply();
    const tables = [...new Set(tableRows.map((r) => r.name))];
    if (!tables.includes(st.table)) tables.unshift(st.table);
    const grains = tableRows.filter((r) => r.name === st.table).map((r) => r.granularity);
    if (!grains.includes(st.grain)) grains.unshift(st.grain);
    const metricsWanted = splitTop(p.get('metrics'));
    const dimNames = (meta?.dimensions || []).map((d) => d.name);
    st.dims.forEach((d) => { if (!dimNames.includes(d.name)) dimNames.push(d.name); });
    const metricNames = (meta?.metrics || []).map((m) => m.name);
    metricsWanted.forEach((m) => { const base = m.split('(')[0]; if (!metricNames.includes(base)) metricNames.push(base); });
    const filters = splitTop(p.get('filters'));
    const f = el('form', { class: 'query', id: 'query', onchange: onChange, onsubmit: (e) => { e.preventDefault(); apply(); } },
      el('div', { class: 'row2' },
        el('label', {}, el('span', { class: 'title', text: 'Table' }), el('select', { id: 'f-table', name: 'table' }, tables.map((t) => option(t, t, t === st.table)))),
        el('label', {}, el('span', { class: 'title', text: 'Grain' }), el('select', { id: 'f-grain', name: 'grain' }, grains.map((g) => option(g, g, g === st.grain))))),
      el('label', {}, el('span', { class: 'title', text: 'Date/time (ISO, periods, macros)' }),
        el('input', { type: 'text', id: 'f-dateTime', name: 'dateTime', value: p.get('dateTime') || '', placeholder: '2013-06-01/P1M' })),
      el('fieldset', {}, el('legend', { text: 'Dimensions (group by)' }), el('div', { class: 'checks', id: 'f-dimensions' },
        dimNames.map((d) => {
          const on = st.dims.find((x) => x.name === d);
          return el('div', { class: 'check' },
            el('input', { type: 'checkbox', id: 'dim-' + d, 'data-dim': d, checked: on ? true : null }),
            el('label', { for: 'dim-' + d, text: d }),
            el('select', { 'data-show': d, 'aria-label': 'fields of ' + d },
              ['', 'id', 'desc', 'id,desc', 'all'].map((s) => option(s, s || 'default', (on?.show || '') === s))));
        }))),
      el('fieldset', {}, el('legend', { text: 'Metrics' }), el('div', { class: 'checks', id: 'f-metrics' },
        metricNames.map((m) => {
          const wanted = metricsWanted.find((x) => x.split('(')[0] === m);
          const reagg = wanted && wanted.includes('reagg=') ? wanted.split('reagg=')[1].replace(')', '') : '';
          return el('div', { class: 'check' },
            el('input', { type: 'checkbox', id: 'metric-' + m, 'data-metric': m, checked: wanted ? true : null }),
            el('label', { for: 'metric-' + m, text: m }),
            el('select', { 'data-reagg': m, 'aria-label': 'reaggregation of ' + m },
              ['', 'dayAvg', 'weekAvg', 'monthAvg'].map((s) => option(s, s || '—', reagg === s))));
        }))),
      el('fieldset', {}, el('legend', { text: 'Filters' }), el('div', { id: 'f-filters' }, filters.map((c) => filterRow(c, dimNames))),
        el('button', { type: 'button', text: '+ filter', onclick: () => { document.getElementById('f-filters').append(filterRow('', dimNames)); } })),
      el('div', { class: 'row2' },
        el('label', {}, el('span', { class: 'title', text: 'Having' }), el('input', { type: 'text', id: 'f-having', name: 'having', value: p.get('having') || '', placeholder: 'flights-gt[100]' })),
        el('label', {}, el('span', { class: 'title', text: 'Sort' }), el('input', { type: 'text', id: 'f-sort', name: 'sort', value: p.get('sort') || '', placeholder: 'flights|desc' }))),
      el('div', { class: 'row2' },
        el('label', {}, el('span', { class: 'title', text: 'Top N' }), el('input', { type: 'number', min: 1, id: 'f-topN', name: 'topN', value: p.get('topN') || '' })),
        el('label', {}, el('span', { class: 'title', text: 'Count' }), el('input', { type: 'number', min: 1, id: 'f-count', name: 'count', value: p.get('count') || '' }))),
      el('div', { class: 'row2' },
        el('label', {}, el('span', { class: 'title', text: 'Time zone' }), el('input', { type: 'text', id: 'f-timeZone', name: 'timeZone', value: p.get('timeZone') || '', placeholder: 'UTC' })),
        el('label', {}, el('span', { class: 'title', text: 'Rows per page' }), el('select', { id: 'f-perPage', name: 'perPage' },
          ['', '50', '100', '500', '1000'].map((n) => option(n, n || 'all', (p.get('perPage') || '') === n))))),
      el('button', { type: 'submit', class: 'primary', text: 'Run' }));
    return f;
  }

  function filterRow(clause, dimNames) {
    const m = (clause || '').match(/^([^|]+)\|([^-]+)-([a-zA-Z]+)\[(.*)\]$/) || [];
    const [, dim = dimNames[0] || '', field = 'id', op = 'in', values = ''] = m;
    const listId = 'values-' + Math.random().toString(36).slice(2);
    const input = el('input', { type: 'text', class: 'f-values', value: values, list: listId, 'aria-label': 'values', placeholder: 'values, comma-separated' });
    let timer = null;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const term = input.value.split(',').pop().trim();
        const d = row.querySelector('.f-dim').value;
        const q = term ? `?perPage=50&page=1&filters=${encodeURIComponent(`${d}|desc-contains[${term}]`)}` : '?perPage=50&page=1';
        const r = await api(`${ROOT}/dimensions/${encodeURIComponent(d)}/values${q}`);
        const list = document.getElementById(listId);
        if (list && r.status === 200) list.replaceChildren(...r.body.rows.map((v) => el('option', { value: v.id, text: v.description || v.id })));
      }, 200);
    });
    const row = el('div', { class: 'filter' },
      el('select', { class: 'f-dim', 'aria-label': 'filter dimension' }, dimNames.map((d) => option(d, d, d === dim))),
      el('select', { class: 'f-op', 'aria-label': 'filter operation' },
        ['in', 'notin', 'startswith', 'contains', 'eq', 'gt', 'lt'].map((o) => option(o, o, o === op))),
      input,
      el('button', { type: 'button', text: '×', 'aria-label': 'remove filter', onclick: () => { row.remove(); apply(); } }),
      el('datalist', { id: listId }));
    row.dataset.field = field;
    return row;
  }

  function readForm() {
    const q = (id) => document.getElementById(id);
    const st = parseDataUrl();
    st.table = q('f-table').value;
    st.grain = q('f-grain').value;
    st.dims = [...document.querySelectorAll('[data-dim]')].filter((c) => c.checked).map((c) => ({
      name: c.dataset.dim, show: document.querySelector(`[data-show="${c.dataset.dim}"]`).value,
    }));
    const metrics = [...document.querySelectorAll('[data-metric]')].filter((c) => c.checked).map((c) => {
      const reagg = document.querySelector(`[data-reagg="${c.dataset.metric}"]`).value;
      return reagg ? `${c.dataset.metric}(reagg=${reagg})` : c.dataset.metric;
    });
    const p = new URLSearchParams();
    for (const k of ['shareUser', 'shareExpires', 'shareSignature', 'asyncAfter']) if (st.params.get(k)) p.set(k, st.params.get(k));
    p.set('metrics', metrics.join(','));
    for (const k of ['dateTime', 'having', 'sort', 'topN', 'count', 'timeZone', 'perPage']) {
      const v = q('f-' + k).value.trim();
      if (v) p.set(k, v);
    }
    if (p.get('perPage')) p.set('page', st.params.get('page') && st.params.get('perPage') === p.get('perPage') ? st.params.get('page') : '1');
    const clauses = [...document.querySelectorAll('#f-filters .filter')].map((r) => {
      const vals = r.querySelector('.f-values').value.trim();
      return vals ? `${r.querySelector('.f-dim').value}|${r.dataset.field || 'id'}-${r.querySelector('.f-op').value}[${vals}]` : null;
    }).filter(Boolean);
    if (clauses.length) p.set('filters', clauses.join(','));
    st.params = p;
    return st;
  }

  function apply() {
    const before = parseDataUrl();
    const st = readForm();
    history.replaceState(null, '', buildUrl(st));
    if (st.table !== before.table || st.grain !== before.grain) return explorer();
    run();
  }

  async function run() {
    const results = document.getElementById('results');
    if (!results) return;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const signal = inflight.signal;
    document.querySelectorAll('.param-error').forEach((e) => e.classList.remove('param-error'));
    results.setAttribute('aria-busy', 'true');
    let r;
    try { r = await api(location.pathname + location.search, signal); } catch (e) { if (signal.aborted) return; throw e; }
    let job = null;
    if (r.status === 202) { job = r.body.jobTicket; r = await waitForJob(r.body, results, signal); }
    if (!r || signal.aborted) return;
    results.removeAttribute('aria-busy');
    if (r.status === 401) return askToken();
    if (r.status >= 400) {
      const param = errorParam(r.body?.reason);
      const field = param && document.getElementById('f-' + param);
      if (field) field.classList.add('param-error');
      return results.replaceChildren(actions(), errorNotice(r.body));
    }
    renderResults(results, r.body);
    if (job) results.prepend(notice('info', 'Answered by job ', el('code', { id: 'job-done', text: job }), '.'));
  }

  async function waitForJob(job, results, signal) {
    results.replaceChildren(notice('info', 'Running as job ', el('code', { id: 'job-ticket', text: job.jobTicket }), ` (status ${job.status}); results appear here when it is done.`));
    for (;;) {
      const r = await api(`${ROOT}/jobs/${encodeURIComponent(job.jobTicket)}/results?asyncAfter=5000`, signal);
      if (signal.aborted) return null;
      if (r.status !== 200 || !r.body || !r.body.jobTicket) return r;
      results.querySelector('.notice').lastChild.textContent = ` (status ${r.body.status}); results appear here when it is done.`;
    }
  }

  function link(format) { return withParam(location.href, 'format', format); }

  async function download(format, e) {
    if (!token() || shared()) return; // a plain link carries the share signature or needs nothing
    e.preventDefault();
    const r = await fetch(link(format), { headers: { Authorization: 'Bearer ' + token() } });
    const blob = await r.blob();
    const name = (r.headers.get('content-disposition') || '').match(/filename=([^;]+)/)?.[1] || 'answer.' + format;
    const a = el('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(a); a.click(); a.remove();
  }

  function actions() {
    const copy = (text) => navigator.clipboard && navigator.clipboard.writeText(text);
    const curl = () => `curl '${location.origin}${link('json')}'` + (token() && !shared() ? ` -H "Authorization: Bearer $QUIVER_TOKEN"` : '');
    return el('div', { class: 'actions' },
      ...['csv', 'json', 'arrow', 'parquet'].map((f) => el('a', { href: link(f), id: 'dl-' + f, text: f.toUpperCase(), onclick: (e) => download(f, e) })),
      el('button', { type: 'button', id: 'copy-link', text: 'Copy link', onclick: () => copy(location.href) }),
      el('button', { type: 'button', id: 'copy-curl', text: 'Copy curl', onclick: () => copy(curl()) }));
  }

  function renderResults(results, body) {
    const rows = body.rows || [];
    const kids = [actions()];
    if (body.meta?.missingIntervals) kids.push(notice('warn', 'No data for: ' + body.meta.missingIntervals.join(', ')));
    const cols = rows.length ? Object.keys(rows[0]) : [];
    const metrics = cols.filter((c) => c !== 'dateTime' && !c.includes('|'));
    const dims = cols.filter((c) => c.includes('|'));
    const st = parseDataUrl();
    const state = { rows: rows.slice(), sortCol: null, desc: false, metric: metrics[0] };
    const chartBox = el('div', { class: 'chart', id: 'chart' });
    const legend = el('div', { class: 'legend', id: 'legend' });
    const metricPick = metrics.length > 1 ? el('label', { class: 'actions' }, 'Chart ', el('select', { id: 'chart-metric', onchange: (e) => { state.metric = e.target.value; draw(); } }, metrics.map((m) => option(m, m)))) : null;
    const tbody = el('tbody');
    const draw = () => {
      drawChart(chartBox, legend, state.rows, st.grain, dims, state.metric);
      tbody.replaceChildren(...state.rows.map((r) => el('tr', {}, cols.map((c) => el('td', { class: typeof r[c] === 'number' ? 'num' : null, text: fmt(r[c]) })))));
    };
    const head = el('tr', {}, cols.map((c) => el('th', { scope: 'col', class: metrics.includes(c) ? 'num' : null, 'aria-sort': 'none' },
      el('button', { type: 'button', text: c, onclick: (e) => {
        state.desc = state.sortCol === c ? !state.desc : metrics.includes(c);
        state.sortCol = c;
        const sign = state.desc ? -1 : 1;
        state.rows.sort((a, b) => (a[c] > b[c] ? 1 : a[c] < b[c] ? -1 : 0) * sign);
        head.querySelectorAll('th').forEach((th) => th.setAttribute('aria-sort', 'none'));
        e.target.closest('th').setAttribute('aria-sort', state.desc ? 'descending' : 'ascending');
        draw();
      } }))));
    if (!rows.length) kids.push(notice('info', 'No rows.'));
    else kids.push(metricPick, chartBox, legend, el('div', { class: 'tablewrap' }, el('table', { class: 'grid', id: 'table' }, el('thead', {}, head), tbody)));
    kids.push(pagerFor(body.meta));
    results.replaceChildren(...kids.filter(Boolean));
    if (rows.length) draw();
  }

  function pagerFor(meta) {
    const p = meta?.pagination;
    if (!p) return null;
    const go = (n) => {
      history.replaceState(null, '', withParam(location.href, 'page', String(n)));
      if (document.getElementById('results')) run(); else route();
    };
    const last = Math.max(1, Math.ceil(p.numberOfResults / p.rowsPerPage));
    return el('nav', { class: 'pager', 'aria-label': 'Pages' },
      el('button', { type: 'button', text: '← previous', disabled: p.currentPage <= 1 ? true : null, onclick: () => go(p.currentPage - 1) }),
      el('span', { text: `page ${p.currentPage} of ${last} (${p.numberOfResults.toLocaleString()} rows)` }),
      el('button', { type: 'button', text: 'next →', disabled: p.currentPage >= last ? true : null, onclick: () => go(p.currentPage + 1) }));
  }

  // One line per dimension combination over time; bars for the `all` grain.
  function drawChart(box, legend, rows, grain, dims, metric) {
    const W = 800, H = 260, L = 56, R = 12, T = 12, B = 28;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': `${metric} chart` });
    const keyOf = (r) => dims.map((d) => r[d]).join(' / ') || metric;
    const values = rows.map((r) => r[metric]).filter((v) => typeof v === 'number');
    const max = Math.max(0, ...values), min = Math.min(0, ...values);
    const y = (v) => T + (H - T - B) * (1 - (v - min) / ((max - min) || 1));
    s.append(svg('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: '#c5ccd6' }));
    for (const v of [max, min]) {
      const t = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6472' });
      t.textContent = fmt(v);
      s.append(t);
    }
    legend.replaceChildren();
    if (grain === 'all') {
      const shown = rows.slice(0, 30), bw = (W - L - R) / Math.max(1, shown.length);
      shown.forEach((r, i) => {
        const v = r[metric] ?? 0;
        const rect = svg('rect', { class: 'series bar', x: L + i * bw + 2, width: Math.max(1, bw - 4), y: Math.min(y(v), y(0)), height: Math.abs(y(0) - y(v)), fill: COLORS[i % COLORS.length] });
        const title = svg('title', {}); title.textContent = `${keyOf(r)}: ${fmt(v)}`; rect.append(title);
        s.append(rect);
      });
    } else {
      const t = (r) => Date.parse(String(r.dateTime).replace(' ', 'T') + 'Z');
      const times = rows.map(t).filter((v) => !isNaN(v));
      const t0 = Math.min(...times), t1 = Math.max(...times);
      const x = (v) => L + (W - L - R) * ((v - t0) / ((t1 - t0) || 1));
      const series = new Map();
      for (const r of rows) { const k = keyOf(r); if (!series.has(k)) series.set(k, []); series.get(k).push(r); }
      [...series.entries()].slice(0, COLORS.length).forEach(([k, rs], i) => {
        const pts = rs.filter((r) => typeof r[metric] === 'number').sort((a, b) => t(a) - t(b)).map((r) => `${x(t(r)).toFixed(1)},${y(r[metric]).toFixed(1)}`);
        const line = svg('polyline', { class: 'series', points: pts.join(' '), fill: 'none', stroke: COLORS[i], 'stroke-width': 1.8, 'vector-effect': 'non-scaling-stroke', 'data-key': k });
        s.append(line);
        const sw = el('span', { class: 'sw' }); sw.style.background = COLORS[i];
        legend.append(el('span', {}, sw, k));
      });
      if (series.size > COLORS.length) legend.append(el('span', { text: `(+${series.size - COLORS.length} more in the table)` }));
      for (const v of [t0, t1]) {
        const lbl = svg('text', { x: x(v), y: H - 8, 'text-anchor': v === t0 ? 'start' : 'end', 'font-size': 11, fill: '#5b6472' });
        lbl.textContent = new Date(v).toISOString().slice(0, 16).replace('T', ' ');
        s.append(lbl);
      }
    }
    box.replaceChildren(s);
  }

  // ---------------------------------------------------------------- routing

  function route() {
    showWho();
    const p = location.pathname.replace(/\/+$/, '');
    const go = p === '' || p === ROOT ? landing : p.startsWith(ROOT + '/data/') ? explorer : metaPage;
    go().catch((e) => main.replaceChildren(notice('error', 'The page failed: ' + e.message)));
  }

  route();
})();
