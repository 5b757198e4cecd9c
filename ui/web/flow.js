// The power flow: sun -> battery -> computer / heat / other loads, with live numbers.
// Laid out for a phone held upright (the sun on top, heat at the bottom); drawn once as SVG,
// each update only changes the numbers and which pipes carry power, in which direction.
import { t } from './i18n.js';
import { power } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 140; const H = 72;
const NODES = {
  sun: { x: 110, y: 4, label: 'flow.sun' },
  battery: { x: 2, y: 96, label: 'flow.battery' },
  base: { x: 218, y: 96, label: 'flow.base' },
  compute: { x: 110, y: 192, label: 'flow.compute' },
  heat: { x: 2, y: 300, label: 'flow.heat' },
  vent: { x: 218, y: 300, label: 'flow.vent' },
};
// Pipes drawn from where power comes from to where it goes (the battery's flips with its sign).
const PIPES = {
  'sun-bus': [[180, 76], [180, 132]],
  'battery-bus': [[142, 132], [180, 132]],
  'bus-base': [[180, 132], [218, 132]],
  'bus-compute': [[180, 132], [180, 192]],
  'compute-heat': [[180, 264], [180, 282], [72, 282], [72, 300]],
  'compute-vent': [[180, 264], [180, 282], [288, 282], [288, 300]],
};

function make(tag, attrs, parent) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

const pts = (list) => list.map(([x, y]) => `${x},${y}`).join(' ');

export class PowerFlow {
  constructor(container) {
    this.svg = make('svg', { viewBox: '0 0 360 376', role: 'img', 'aria-label': t('now.title') });
    const marker = make('marker', { id: 'flow-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 11, markerHeight: 11, markerUnits: 'userSpaceOnUse', orient: 'auto' },
      make('defs', {}, this.svg));
    make('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#000' }, marker);
    this.pipes = {};
    for (const [name, points] of Object.entries(PIPES)) {
      this.pipes[name] = make('polyline', { class: 'pipe', points: pts(points), 'data-pipe': name }, this.svg);
    }
    make('circle', { cx: 180, cy: 132, r: 7, fill: '#000' }, this.svg);
    this.values = {};
    this.subs = {};
    for (const [name, n] of Object.entries(NODES)) {
      const g = make('g', { class: `node ${name}`, 'data-node': name }, this.svg);
      make('rect', { x: n.x, y: n.y, width: W, height: H, rx: 10 }, g);
      make('text', { x: n.x + 10, y: n.y + 21, 'font-size': 16 }, g).textContent = t(n.label);
      this.values[name] = make('text', { class: 'value', x: n.x + 10, y: n.y + 48 }, g);
      this.subs[name] = make('text', { class: 'sub', x: n.x + 10, y: n.y + 65, 'font-size': 13 }, g);
    }
    container.replaceChildren(this.svg);
  }

  pipe(name, on, reverse = false) {
    const p = this.pipes[name];
    const points = reverse ? [...PIPES[name]].reverse() : PIPES[name];
    p.setAttribute('points', pts(points));
    p.classList.toggle('on', !!on);
    if (on) p.setAttribute('marker-end', 'url(#flow-arrow)'); else p.removeAttribute('marker-end');
  }

  update(state) {
    const f = state.flow || {};
    const bat = state.battery || {};
    const set = (name, text, sub = '') => { this.values[name].textContent = text; this.subs[name].textContent = sub; };
    const bw = f.battery_w;
    const known = bw !== null && bw !== undefined;
    const dir = !known || Math.abs(bw) < 5 ? 'flow.idle' : bw > 0 ? 'flow.charging' : 'flow.discharging';
    set('sun', power(f.pv_w));
    set('battery', bat.soc_pct === null || bat.soc_pct === undefined ? '–' : `${bat.soc_pct.toFixed(1)} %`,
      `${t(dir)}${known && Math.abs(bw) >= 5 ? ` ${power(Math.abs(bw))}` : ''}`);
    set('compute', power(f.compute_w));
    set('heat', power(f.heat_to_room_w));
    set('vent', power(f.heat_vented_w));
    set('base', power(f.base_load_w));
    this.pipe('sun-bus', (f.pv_w || 0) > 1);
    this.pipe('battery-bus', known && Math.abs(bw) >= 5, known && bw > 0);
    this.pipe('bus-compute', (f.compute_w || 0) > 1);
    this.pipe('bus-base', (f.base_load_w || 0) > 1);
    this.pipe('compute-heat', (f.heat_to_room_w || 0) > 1);
    this.pipe('compute-vent', (f.heat_vented_w || 0) > 1);
  }
}
