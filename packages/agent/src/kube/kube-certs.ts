/**
 * The Kubernetes API's TLS material, made at first start with Debian's
 * openssl and kept root-only in the state directory: a CA (its certificate
 * goes into the kubeconfig) and a serving certificate for 127.0.0.1 and
 * localhost signed by it; and the bearer token kubectl presents.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export interface KubeCredentials {
  caCert: string;
  cert: string;
  key: string;
  token: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]}: ${err.stderr?.toString().trim() || err.message} (Debian's openssl makes the Kubernetes API's certificates: apt-get install openssl)`);
  }
}

export function ensureKubeCredentials(stateDir: string): KubeCredentials {
  const dir = join(stateDir, 'kube');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const f = (n: string) => join(dir, n);
  if (!existsSync(f('ca.crt')) || !existsSync(f('apiserver.crt')) || !existsSync(f('apiserver.key'))) {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650', '-subj', '/CN=membrane-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    openssl(['req', ...ec, '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=membrane-apiserver'], dir);
    writeFileSync(f('apiserver.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n');
    openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', '825', '-extfile', 'apiserver.ext'], dir);
    for (const n of ['apiserver.csr', 'apiserver.ext', 'ca.srl']) rmSync(f(n), { force: true });
  }
  if (!existsSync(f('token'))) writeFileSync(f('token'), `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  for (const n of ['ca.key', 'apiserver.key', 'token']) chmodSync(f(n), 0o600);
  return { caCert: readFileSync(f('ca.crt'), 'utf8'), cert: readFileSync(f('apiserver.crt'), 'utf8'), key: readFileSync(f('apiserver.key'), 'utf8'), token: readFileSync(f('token'), 'utf8').trim() };
}
