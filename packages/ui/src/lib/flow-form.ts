/**
 * The flow table's filter form → Hubble FlowFilters, the way `hubble
 * observe` builds them from its flags (a side-less field such as the pod or
 * the namespace matches either side: one filter per side, ORed; the other
 * fields narrow both), compiled by the observer's one implementation so the
 * console filters exactly as the API and the CLI do.
 */
import { create } from '@bufbuild/protobuf';
import { compileFilters, type FlowPredicate } from '@membrane/observer/browser';
import { flow as pb } from '@membrane/proto';

export interface FlowForm {
  /** Namespaces (either side); empty: all. */
  namespaces?: string[];
  /** `[ns/]pod-prefix`, either side. */
  pod?: string;
  /** A label selector (`app=x`, `k8s:class in (a,b)`), either side. */
  label?: string;
  verdict?: '' | 'FORWARDED' | 'DROPPED' | 'REDIRECTED' | 'AUDIT' | 'ERROR';
  /** A port, either side. */
  port?: string;
  httpMethod?: string;
  /** An RE2 regular expression of the path. */
  httpPath?: string;
  /** `403`, or a class `4+`. */
  httpStatus?: string;
}

const VERDICT: Record<string, pb.Verdict> = { FORWARDED: pb.Verdict.FORWARDED, DROPPED: pb.Verdict.DROPPED, REDIRECTED: pb.Verdict.REDIRECTED, AUDIT: pb.Verdict.AUDIT, ERROR: pb.Verdict.ERROR };

export function formFilters(form: FlowForm): pb.FlowFilter[] {
  const common: Record<string, unknown> = {};
  if (form.verdict) common['verdict'] = [VERDICT[form.verdict]];
  if (form.httpMethod?.trim()) common['httpMethod'] = [form.httpMethod.trim().toUpperCase()];
  if (form.httpPath?.trim()) common['httpPath'] = [form.httpPath.trim()];
  if (form.httpStatus?.trim()) common['httpStatusCode'] = [form.httpStatus.trim()];
  const sides: [Record<string, unknown>, Record<string, unknown>] = [{}, {}];
  const both = (src: string, dst: string, values: unknown[]) => {
    if (values.length === 0) return;
    sides[0][src] = values;
    sides[1][dst] = values;
  };
  const pods: string[] = [];
  const ns = (form.namespaces ?? []).filter((n) => n.trim());
  if (form.pod?.trim()) {
    const p = form.pod.trim();
    if (p.includes('/') || ns.length === 0) pods.push(p);
    else for (const n of ns) pods.push(`${n}/${p}`);
  } else for (const n of ns) pods.push(`${n}/`);
  both('sourcePod', 'destinationPod', pods);
  if (form.label?.trim()) both('sourceLabel', 'destinationLabel', [form.label.trim()]);
  if (form.port?.trim()) both('sourcePort', 'destinationPort', [form.port.trim()]);
  const sided = Object.keys(sides[0]).length > 0;
  const filters = sided ? sides.map((s) => ({ ...s, ...common })) : Object.keys(common).length ? [common] : [];
  return filters.map((f) => create(pb.FlowFilterSchema, f));
}

/** The predicate of a form (a bad field throws the observer's FilterError, naming it). */
export function formPredicate(form: FlowForm): FlowPredicate {
  return compileFilters(formFilters(form));
}
