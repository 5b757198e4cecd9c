// Numbers and times as the people at the site read them: the site's own time zone, short units.
import { t } from './i18n.js';

let zone = 'UTC';
let locale = 'en-GB';
export function setZone(tz, lang) { zone = tz || 'UTC'; locale = lang === 'en' ? 'en-GB' : lang; }

function fmt(opts) { return new Intl.DateTimeFormat(locale, { timeZone: zone, ...opts }); }

export function time(iso) {
  if (!iso) return '–';
  return fmt({ hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
}
export function dayTime(iso) {
  if (!iso) return '–';
  return fmt({ weekday: 'short', hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
}
export function clock(date) {
  return fmt({ weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(date);
}
const n1 = (v) => (Math.abs(v) >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString());
export function power(w) {
  if (w === null || w === undefined) return '–';
  return Math.abs(w) >= 1000 ? t('unit.kw', { n: (Math.round(w / 100) / 10).toString() }) : t('unit.w', { n: Math.round(w).toString() });
}
export function energy(wh) {
  if (wh === null || wh === undefined) return '–';
  return Math.abs(wh) >= 1000 ? t('unit.kwh', { n: (Math.round(wh / 100) / 10).toString() }) : t('unit.wh', { n: Math.round(wh).toString() });
}
export function pct(v) { return v === null || v === undefined ? '–' : t('unit.pct', { n: n1(v) }); }
export function celsius(v) { return v === null || v === undefined ? '–' : t('unit.c', { n: n1(v) }); }
export function bytes(n) {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}
