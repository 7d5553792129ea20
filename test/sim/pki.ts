import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** A PEM certificate with its private key. */
export interface CertPair {
  cert: string;
  key: string;
}

/** What a certificate is for; SANs may be DNS names or IP addresses. */
export interface CertRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ips?: string[];
  usage: 'server' | 'client' | 'both';
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Creates (or loads, when already present in dir) a self-signed CA named `name`. */
export function ensureCA(dir: string, name: string): CertPair {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  if (!existsSync(crt)) {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
    openssl(['req', '-x509', '-new', '-key', key, '-sha256', '-days', '3650', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', crt], dir);
  }
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
}

/** Issues a certificate signed by the CA `caName` in dir; files are `<file>.crt` / `<file>.key`. */
export function issueCert(dir: string, caName: string, file: string, req: CertRequest): CertPair {
  const crt = join(dir, `${file}.crt`);
  const key = join(dir, `${file}.key`);
  if (!existsSync(crt)) {
    const csr = join(dir, `${file}.csr`);
    const ext = join(dir, `${file}.ext`);
    const subj = `/CN=${req.commonName}` + (req.organizations ?? []).map((o) => `/O=${o}`).join('');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
    openssl(['req', '-new', '-key', key, '-subj', subj, '-out', csr], dir);
    const sans = [...(req.dnsNames ?? []).map((d) => `DNS:${d}`), ...(req.ips ?? []).map((i) => `IP:${i}`)];
    const eku = req.usage === 'server' ? 'serverAuth' : req.usage === 'client' ? 'clientAuth' : 'serverAuth,clientAuth';
    writeFileSync(ext, [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${eku}`,
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
    ].join('\n') + '\n');
    openssl(['x509', '-req', '-in', csr, '-CA', join(dir, `${caName}.crt`), '-CAkey', join(dir, `${caName}.key`),
      '-CAcreateserial', '-days', '3650', '-sha256', '-extfile', ext, '-out', crt], dir);
  }
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
}
