// Every word the page shows comes from i18n/<lang>.json (English first). Elements name their
// string with data-i18n (text), data-i18n-placeholder, data-i18n-aria-label.
let strings = {};
let fallback = {};

export async function loadStrings(lang) {
  fallback = await (await fetch('/ui/i18n/en.json')).json();
  strings = fallback;
  if (lang && lang !== 'en') {
    const res = await fetch(`/ui/i18n/${encodeURIComponent(lang.split('-')[0])}.json`);
    if (res.ok) strings = { ...fallback, ...(await res.json()) };
  }
  document.documentElement.lang = lang || 'en';
}

export function t(key, vars = {}) {
  const template = strings[key] ?? fallback[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (vars[name] ?? `{${name}}`));
}

export function applyStrings(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
}
