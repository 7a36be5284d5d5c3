/** Kubernetes LabelSelector, as CiliumNetworkPolicy and NetworkPolicy carry it. */
import { checkLabelValue, checkSelectorKey } from './k8s-names.js';
import { arr, isPlainObject, join, obj, str, strMap, typeName, type Schema } from './schema.js';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

const requirement: Schema<LabelSelectorRequirement> = (value, path, problems) => {
  const r = obj(
    {
      key: str({ nonEmpty: true, check: checkSelectorKey }),
      operator: str({ oneOf: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }),
      values: arr(str({ check: checkLabelValue })),
    },
    { required: ['key', 'operator'] },
  )(value, path, problems);
  if (!r) return undefined;
  const op = r.operator as SelectorOperator;
  const values = r.values ?? [];
  if ((op === 'In' || op === 'NotIn') && values.length === 0) {
    problems.add(join(path, 'values'), `must not be empty when operator is ${op}`);
    return undefined;
  }
  if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) {
    problems.add(join(path, 'values'), `must be empty when operator is ${op}`);
    return undefined;
  }
  return { key: r.key!, operator: op, ...(values.length ? { values } : {}) };
};

export const labelSelector: Schema<LabelSelector> = (value, path, problems) => {
  if (!isPlainObject(value)) {
    problems.add(path, `must be a label selector mapping (matchLabels, matchExpressions), not ${typeName(value)}`);
    return undefined;
  }
  return obj({
    matchLabels: strMap(checkSelectorKey, str({ check: checkLabelValue })),
    matchExpressions: arr(requirement),
  })(value, path, problems) as LabelSelector | undefined;
};
