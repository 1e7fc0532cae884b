/**
 * Throwaway certificate authorities and node certificates for the HTTPS
 * tests, made at test time with `openssl` (on the PATH) in a temporary
 * directory: no key material is kept in the repository. P-256 keys, valid
 * for two days; node certificates name `localhost`, `127.0.0.1` and `::1`.
 *
 * @module
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate authority: its certificate and key files. */
export interface TestCa {
  /** Its common name. */
  readonly name: string;
  /** PEM certificate file. */
  readonly cert: string;
  /** PEM private key file. */
  readonly key: string;
  /** The certificate's PEM text (what `--ca` files hold). */
  readonly pem: string;
}

/** A server certificate signed by a {@linkcode TestCa}. */
export interface TestCert {
  /** PEM certificate file (for `--tls-cert`). */
  readonly cert: string;
  /** PEM private key file (for `--tls-key`). */
  readonly key: string;
}

const DAYS = "2";
const CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function openssl(args: readonly string[], cwd: string): void {
  let output: Deno.CommandOutput;
  try {
    output = new Deno.Command("openssl", {
      args: [...args],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
  } catch (error) {
    throw new Error(`Cannot run openssl (is it on the PATH?): ${(error as Error).message}`);
  }
  if (!output.success) {
    const err = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`openssl ${args.join(" ")} failed with code ${output.code}: ${err}`);
  }
}

/** A file name made of `name`, safe for any file system. */
function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "-");
}

/**
 * Makes a self-signed CA in `dir`.
 *
 * @param dir Where its files go.
 * @param name Its common name.
 * @returns Its files and certificate.
 * @throws {Error} When openssl is missing or fails.
 */
export function createCa(dir: string, name: string): TestCa {
  const base = `ca-${slug(name)}`;
  openssl([
    "req",
    "-x509",
    ...CURVE,
    "-keyout",
    `${base}.key`,
    "-out",
    `${base}.pem`,
    "-days",
    DAYS,
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
  const cert = join(dir, `${base}.pem`);
  return { name, cert, key: join(dir, `${base}.key`), pem: readFileSync(cert, "utf8") };
}

/**
 * Issues a server certificate for `localhost`, `127.0.0.1` and `::1`,
 * signed by `ca`, in `dir`.
 *
 * @param ca The signing CA.
 * @param dir Where its files go.
 * @param name Its common name and file name.
 * @returns Its files.
 * @throws {Error} When openssl fails.
 */
export function issueCert(ca: TestCa, dir: string, name: string): TestCert {
  const base = `node-${slug(name)}`;
  writeFileSync(
    join(dir, `${base}.ext`),
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=critical,CA:FALSE\n" +
      "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  openssl([
    "req",
    ...CURVE,
    "-keyout",
    `${base}.key`,
    "-out",
    `${base}.csr`,
    "-subj",
    `/CN=${name}`,
  ], dir);
  openssl([
    "x509",
    "-req",
    "-in",
    `${base}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-set_serial",
    String(1 + Math.floor(Math.random() * 2 ** 48)),
    "-out",
    `${base}.pem`,
    "-days",
    DAYS,
    "-extfile",
    `${base}.ext`,
  ], dir);
  return { cert: join(dir, `${base}.pem`), key: join(dir, `${base}.key`) };
}

/** A temporary directory with a CA, a certificate it signed, and an unrelated CA. */
export interface TestPki {
  /** The directory. */
  readonly dir: string;
  /** The CA that signed {@linkcode TestPki.cert}. */
  readonly ca: TestCa;
  /** A node certificate signed by `ca`. */
  readonly cert: TestCert;
  /** Another CA, which signed nothing here. */
  readonly otherCa: TestCa;
  /** Deletes the directory. */
  remove(): void;
}

/**
 * Makes a {@linkcode TestPki} in a new temporary directory.
 *
 * @param label Part of the directory's and the CAs' names.
 * @returns The files; call `remove()` when done.
 * @throws {Error} When openssl is missing or fails.
 */
export function createTestPki(label = "watercraft"): TestPki {
  const dir = mkdtempSync(join(tmpdir(), `${slug(label)}-tls-`));
  try {
    const ca = createCa(dir, `${label} test CA`);
    const cert = issueCert(ca, dir, `${label} node`);
    const otherCa = createCa(dir, `${label} other CA`);
    return { dir, ca, cert, otherCa, remove: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
