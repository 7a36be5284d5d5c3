/** The part of Kubernetes ObjectMeta that manifests carry. */
import { checkDns1123Label, checkDns1123Subdomain, checkLabelKey, checkLabelValue } from './k8s-names.js';
import { any, obj, str, strMap, type Schema } from './schema.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
}

export const objectMeta: Schema<ObjectMeta> = (value, path, problems) =>
  obj(
    {
      name: str({ nonEmpty: true, check: checkDns1123Subdomain }),
      namespace: str({ nonEmpty: true, check: checkDns1123Label }),
      labels: strMap(checkLabelKey, str({ check: checkLabelValue })),
      annotations: strMap((k) => checkLabelKey(k), str()),
      uid: str(),
      // Server-managed fields that `kubectl get -o yaml` output carries: accepted, not interpreted.
      resourceVersion: any(),
      generation: any(),
      creationTimestamp: any(),
      managedFields: any(),
      selfLink: any(),
    },
    { required: ['name'] },
  )(value, path, problems) as ObjectMeta | undefined;
