/**
 * Kubernetes naming rules (apimachinery validation): object names, label keys
 * and values. Each check returns the reason a value is invalid, or undefined.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function checkDns1123Label(s: string): string | undefined {
  if (s.length > 63) return `"${s}" is longer than 63 characters`;
  if (!DNS1123_LABEL.test(s)) return `"${s}" must consist of lower case alphanumeric characters or '-', and start and end with an alphanumeric character`;
  return undefined;
}

export function checkDns1123Subdomain(s: string): string | undefined {
  if (s.length > 253) return `"${s}" is longer than 253 characters`;
  if (!DNS1123_SUBDOMAIN.test(s)) return `"${s}" must consist of lower case alphanumeric characters, '-' or '.', and start and end with an alphanumeric character`;
  return undefined;
}

/** A label key: `[prefix/]name`, prefix a DNS subdomain, name a qualified name. */
export function checkLabelKey(key: string): string | undefined {
  if (key === '') return 'label key must not be empty';
  const slash = key.lastIndexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0) {
    const prefix = key.slice(0, slash);
    if (prefix === '' || prefix.length > 253 || !/^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/.test(prefix)) {
      return `label key "${key}" has an invalid prefix "${prefix}" (must be a DNS subdomain)`;
    }
  }
  if (name.length > 63) return `label key "${key}": name part is longer than 63 characters`;
  if (!QUALIFIED_NAME.test(name)) {
    return `label key "${key}" must consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character`;
  }
  return undefined;
}

export function checkLabelValue(value: string): string | undefined {
  if (value.length > 63) return `label value "${value}" is longer than 63 characters`;
  if (!LABEL_VALUE.test(value)) {
    return `label value "${value}" must be empty or consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character`;
  }
  return undefined;
}

/** Cilium label sources a selector key may carry as `source:key`. */
export const LABEL_SOURCES = ['k8s', 'reserved', 'any', 'unspec', 'container', 'cidr', 'fqdn', 'cilium-generated', 'kvstore', 'node'] as const;

/**
 * A selector key as Cilium reads it: an optional `source:` prefix, then a
 * Kubernetes label key. CIDR and reserved keys are not Kubernetes keys.
 */
export function checkSelectorKey(key: string): string | undefined {
  const colon = key.indexOf(':');
  if (colon >= 0) {
    const source = key.slice(0, colon);
    const rest = key.slice(colon + 1);
    if (!(LABEL_SOURCES as readonly string[]).includes(source)) {
      return `label key "${key}" has an unknown source "${source}:" (known: ${LABEL_SOURCES.join(', ')})`;
    }
    if (rest === '') return `label key "${key}" has no name after "${source}:"`;
    if (source === 'reserved' || source === 'cidr' || source === 'fqdn') return undefined;
    return checkLabelKey(rest);
  }
  return checkLabelKey(key);
}
