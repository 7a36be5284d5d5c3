/** The part of Kubernetes ObjectMeta that manifests carry. */
import { checkDns1123Label, checkDns1123Subdomain, checkLabelKey, checkLabelValue } from './k8s-names.js';
import { any, arr, obj, str, strMap, type Schema } from './schema.js';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  /** Who made the object (a Deployment for its pods): kept, so a restarted agent knows its pods' owners. */
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid?: string; controller?: boolean }[];
}

export const objectMeta: Schema<ObjectMeta> = (value, path, problems) =>
  obj(
    {
      name: str({ nonEmpty: true, check: checkDns1123Subdomain }),
      namespace: str({ nonEmpty: true, check: checkDns1123Label }),
      labels: strMap(checkLabelKey, str({ check: checkLabelValue })),
      annotations: strMap((k) => checkLabelKey(k), str()),
      uid: str(),
      ownerReferences: arr(obj({ apiVersion: str({ nonEmpty: true }), kind: str({ nonEmpty: true }), name: str({ nonEmpty: true }), uid: str(), controller: any(), blockOwnerDeletion: any() }, { required: ['apiVersion', 'kind', 'name'] })),
      // Server-managed fields that `kubectl get -o yaml` output carries: accepted, not interpreted.
      resourceVersion: any(),
      generation: any(),
      creationTimestamp: any(),
      managedFields: any(),
      selfLink: any(),
    },
    { required: ['name'] },
  )(value, path, problems) as ObjectMeta | undefined;
